{#- Which rows a data test reads.

    Tests configured with `where: rows_new_since_the_last_build` (the project default, see
    dbt_project.yml) read only what this build brought:
      - on a raw source: the rows ingested after the previous build's watermark (older rows were
        tested when they arrived); a `unique` test reads every row sharing a key with those, so a
        new row that repeats an old key fails it;
      - on an incremental model: the rows this build wrote (they carry its watermark). A key test
        still holds for the whole table: delete+insert replaces every key it writes;
      - on a view or a table rebuilt from scratch: every row.
    A full refresh, the first build, `--vars '{test_all_rows: true}'` and the environment variable
    NUDGELAB_TEST_ALL_ROWS=1 (set by `nudgelab build --test-all-rows`, and after a build that
    failed) test every row. Any other `where` works as dbt's own does. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where == 'rows_new_since_the_last_build' -%}
        {%- set where = new_rows_condition(relation) -%}
    {%- endif -%}
    {%- if where -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}

{% macro new_rows_condition(relation) -%}
    {%- if not execute or flags.FULL_REFRESH or var('test_all_rows', false)
          or env_var('NUDGELAB_TEST_ALL_ROWS', '') in ('1', 'true') -%}
        {%- do return('') -%}
    {%- endif -%}
    {%- if model.attached_node -%}
        {%- set tested = graph.nodes.get(model.attached_node) -%}
        {%- if tested and tested.config.materialized == 'incremental' -%}
            {%- do return('ingested_through = (select max(ingested_through) from ' ~ relation ~ ')') -%}
        {%- endif -%}
        {%- do return('') -%}
    {%- endif -%}
    {%- if model.sources -%}
        {%- set previous = last_build_watermark() -%}
        {%- if previous -%}
            {%- set test = model.test_metadata or {} -%}
            {%- set column = (test.kwargs or {}).get('column_name') -%}
            {%- if test.name == 'unique' and column -%}
                {#- every row that shares a key with a new row: a new row repeating an old key fails -#}
                {%- do return(column ~ ' in (select ' ~ column ~ ' from ' ~ relation ~ ' where ingested_at > ' ~ previous ~ ')') -%}
            {%- endif -%}
            {%- do return('ingested_at > ' ~ previous) -%}
        {%- endif -%}
    {%- endif -%}
    {%- do return('') -%}
{%- endmacro %}

{#- The previous build's watermark (fct_messages') as a SQL expression, or '' before any. -#}
{% macro last_build_watermark() -%}
    {%- set node = graph.nodes.get('model.' ~ project_name ~ '.fct_messages') -%}
    {%- set marks = watermark_relation() -%}
    {%- if not node or adapter.get_relation(database=marks.database, schema=marks.schema, identifier=marks.identifier) is none -%}
        {%- do return('') -%}
    {%- endif -%}
    {%- do return(recorded_watermark(node.alias or node.name)) -%}
{%- endmacro %}
