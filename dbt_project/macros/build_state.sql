{#- Write-audit-publish across dbt and nudgelab (see warehouse/publish.py).

    nudgelab records in meta.build_state whether the build database holds a build whose marts
    passed their audit (and a fingerprint of them). Any dbt invocation that can write models — a
    `dbt run` or `dbt build` by hand included — clears that flag when it starts, so nothing it
    writes is published until `nudgelab build` has tested and audited it again. The table's DDL
    is warehouse.publish.STATE_DDL (tests/warehouse/test_publish.py keeps the two equal); it is
    created here too so that the update never depends on which tool ran first. Plain statements,
    no adapter calls: those open a transaction that dbt rolls back after the hooks. -#}
{% macro mark_build_unaudited() -%}
    {%- if flags.WHICH in ('run', 'build', 'seed', 'snapshot', 'run-operation', 'retry') -%}
        create schema if not exists meta;
        create table if not exists meta.build_state (singleton boolean primary key default true, audited boolean not null, changed_at timestamptz not null, fingerprint json);
        update meta.build_state set audited = false, changed_at = {{ dbt.current_timestamp() }}
    {%- else -%}
        select 1 as nothing_to_mark
    {%- endif -%}
{%- endmacro %}
