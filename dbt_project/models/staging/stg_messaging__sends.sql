{#- The SQL lives in macros/staged_sends.sql, which incremental models also use to read a few
    messages' sends (filtered before the dedupe). -#}
{{ staged_sends() }}
