{#- Write-audit-publish across dbt and nudgelab (see warehouse/publish.py).

    nudgelab records in meta.build_state whether the build database holds a build whose marts
    passed their audit (and a fingerprint of them). Any dbt invocation that can write models — a
    `dbt run` or `dbt build` by hand included — clears that flag when it starts, so nothing it
    writes is published until `nudgelab build` has tested and audited it again. The table's DDL
    is warehouse.publish.STATE_DDL (tests/warehouse/test_publish.py keeps the two equal); it is
    created here too so that the update never depends on which tool ran first. Plain statements,
    no adapter calls: those open a transaction that dbt rolls back after the hooks. -#}
{% macro mark_build_unaudited() -%}
    {{ return(adapter.dispatch('mark_build_unaudited', 'nudgelab')()) }}
{%- endmacro %}
{% macro default__mark_build_unaudited() -%}
    {%- if flags.WHICH in ('run', 'build', 'seed', 'snapshot', 'run-operation', 'retry') -%}
        create schema if not exists meta;
        create table if not exists meta.build_state (singleton boolean primary key default true, audited boolean not null, changed_at timestamptz not null, fingerprint json);
        update meta.build_state set audited = false, changed_at = {{ dbt.current_timestamp() }}
    {%- else -%}
        select 1 as nothing_to_mark
    {%- endif -%}
{%- endmacro %}

{#- Spark (plain Parquet tables): no UPDATE, primary key, default, timestamptz or json; the state
    is one row, rewritten whole, one statement per query (Spark runs no multi-statement SQL).
    nudgelab's write-audit-publish stays on DuckDB; this keeps the flag honest on Spark too. -#}
{% macro spark__mark_build_unaudited() -%}
    {%- if execute and flags.WHICH in ('run', 'build', 'seed', 'snapshot', 'run-operation', 'retry') -%}
        {%- do run_query('create schema if not exists meta') -%}
        {%- do run_query('create table if not exists meta.build_state (singleton boolean, audited boolean, '
                         ~ 'changed_at timestamp, fingerprint string) using parquet') -%}
        {%- do run_query('insert overwrite table meta.build_state select true, false, '
                         ~ dbt.current_timestamp() ~ ', cast(null as string)') -%}
    {%- endif -%}
    select 1 as build_marked_unaudited
{%- endmacro %}
