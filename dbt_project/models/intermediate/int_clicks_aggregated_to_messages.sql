{#- One row per message with at least one click: human clicks (bots and e-mail opens excluded) and
    bot clicks counted apart, first human click time. -#}
with

{{ changed_messages_ctes() }}

clicks as (
    select * from {{ ref('stg_messaging__clicks') }}
    where message_id is not null and not is_open
    {% if is_incremental() %}
        and message_id in (select message_id from affected_messages)
    {% endif %}
),

final as (
    select
        message_id,
        min(case when not is_bot then clicked_at end) as first_human_click_at,
        sum(case when not is_bot then 1 else 0 end) as human_clicks,
        sum(case when is_bot then 1 else 0 end) as bot_clicks,
        min(case when is_bot then clicked_at end) as first_bot_click_at,
        (select ingested_through from ingested_through) as ingested_through
    from clicks
    group by message_id
)

select * from final
