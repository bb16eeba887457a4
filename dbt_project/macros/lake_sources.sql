{#- The raw sources on Spark: views over the lake that `nudgelab ingest --to lake DIR` writes (one
    folder per event type, Hive-partitioned by event_date). A view over the folder discovers new
    files and partitions at every query, so later batches need nothing more. The lake is the var
    `lake` or the environment variable NUDGELAB_LAKE. On DuckDB nothing is registered here: the raw
    tables are the warehouse's own, or views `nudgelab build --from-lake` made. -#}
{% macro register_raw_sources() -%}
    {{ return(adapter.dispatch('register_raw_sources', 'nudgelab')()) }}
{%- endmacro %}

{% macro default__register_raw_sources() -%}
    select 1 as nothing_to_register
{%- endmacro %}

{% macro spark__register_raw_sources() -%}
    {%- if execute -%}
        {%- set lake = var('lake', env_var('NUDGELAB_LAKE', '')) -%}
        {%- if not lake -%}
            {{ exceptions.raise_compiler_error("the spark target reads the raw layer from a lake: set the var `lake` or NUDGELAB_LAKE to its folder") }}
        {%- endif -%}
        {%- for source in graph.sources.values() if source.source_name == 'messaging' -%}
            {%- do run_query('create schema if not exists ' ~ source.schema) -%}
            {%- do run_query('create or replace view ' ~ source.schema ~ '.' ~ source.identifier
                             ~ ' as select * from parquet.`' ~ lake ~ '/' ~ source.identifier ~ '`') -%}
        {%- endfor -%}
    {%- endif -%}
    select 1 as raw_sources_registered
{%- endmacro %}
