{#- Change detection for the incremental models.

    Every incremental model records a watermark (meta.dbt_watermarks): the newest raw ingested_at
    it has taken in. The next build treats raw rows ingested after it as new and recomputes every
    key they touch. Detection reads the append-only raw tables with a range filter on
    ingested_at (answered from their zone maps, so it costs little however large the tables
    grow); the models' own logic keeps reading staging. -#}

{#- Where incremental models record their watermarks: one row per model, written after each
    successful build of it (see record_watermark). Kept apart from the models' rows so that a
    build that writes no row still moves its watermark. -#}
{% macro watermark_relation() -%}
    {#- Spark has no database above its schemas -#}
    {{ return(api.Relation.create(database=(target.database if target.database is defined else none), schema='meta',
                                  identifier='dbt_watermarks')) }}
{%- endmacro %}

{#- on-run-start: create the watermark table when missing. -#}
{% macro create_watermark_table() -%}
    {%- set relation = watermark_relation() -%}
    {%- do adapter.create_schema(relation) -%}
    create table if not exists {{ relation }} (
        model {{ dbt.type_string() }},
        ingested_through {{ dbt.type_timestamp() }},
        recorded_at {{ dbt.type_timestamp() }}
    )
{%- endmacro %}

{#- The watermark recorded for a model (by its table name), as a scalar subquery; a model with
    none recorded gets a time before any data, so it takes every raw row as new. -#}
{% macro recorded_watermark(model_name) -%}
    {{ return(adapter.dispatch('recorded_watermark', 'nudgelab')(model_name)) }}
{%- endmacro %}
{% macro default__recorded_watermark(model_name) -%}
    (select coalesce(max(ingested_through), {{ before_any_data() }}) from {{ watermark_relation() }}
     where model = '{{ model_name }}')
{%- endmacro %}
{#- Spark: the table is append-only (no DELETE on Parquet): the latest recorded row wins. -#}
{% macro spark__recorded_watermark(model_name) -%}
    (select coalesce(max_by(ingested_through, recorded_at), {{ before_any_data() }}) from {{ watermark_relation() }}
     where model = '{{ model_name }}')
{%- endmacro %}

{#- The watermark of the model being built (only inside is_incremental()). -#}
{% macro since_last_build() -%}
    {{ recorded_watermark(this.identifier) }}
{%- endmacro %}

{#- post-hook of every incremental model: it has now taken in the raw rows up to the newest
    ingested_at, but no further than its incremental parents have (a parent left out of a
    `--select` build has not seen the newest rows yet; the next build then recomputes from here). -#}
{% macro record_watermark() -%}
    {%- set bounds = ['coalesce((' ~ raw_ingested_through() ~ '), ' ~ before_any_data() ~ ')'] -%}
    {%- for node_id in model.depends_on.nodes -%}
        {%- set parent = graph.nodes.get(node_id) -%}
        {%- if parent and parent.resource_type == 'model' and parent.config.materialized == 'incremental' -%}
            {%- do bounds.append(recorded_watermark(parent.alias or parent.name)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if target.type != 'spark' %}
    delete from {{ watermark_relation() }} where model = '{{ this.identifier }}';
    {%- endif %}
    insert into {{ watermark_relation() }} (model, ingested_through, recorded_at)
    select '{{ this.identifier }}',
           {% if bounds | length == 1 %}{{ bounds[0] }}{% else %}least({{ bounds | join(', ') }}){% endif %},
           {{ dbt.current_timestamp() }}
{%- endmacro %}

{#- A time before any event: the watermark of a model that has taken in nothing yet. -#}
{% macro before_any_data() -%}
    cast('1900-01-01 00:00:00+00' as {{ dbt.type_timestamp() }})
{%- endmacro %}

{#- Messages touched by a raw row ingested after `since`: their own (re)send, a receipt, a click or
    a dwell. A receipt that carries only the provider's id reaches its message through the send with
    that id, and a new send touches itself, which lets it adopt receipts that arrived before it. -#}
{% macro messages_touched_since(since) -%}
    select message_id from {{ source('messaging', 'sends') }}
    where ingested_at > {{ since }} and message_id is not null
    union
    select message_id from {{ source('messaging', 'deliveries') }}
    where ingested_at > {{ since }} and message_id is not null
    union
    select sends.message_id
    from {{ source('messaging', 'deliveries') }} as receipts
    inner join {{ source('messaging', 'sends') }} as sends
        on receipts.provider_message_id = sends.provider_message_id
    where receipts.ingested_at > {{ since }} and receipts.message_id is null and sends.message_id is not null
    union
    select message_id from {{ source('messaging', 'clicks') }}
    where ingested_at > {{ since }} and message_id is not null
    union
    select message_id from {{ source('messaging', 'dwells') }}
    where ingested_at > {{ since }} and message_id is not null
{%- endmacro %}

{#- Users touched by a raw row ingested after `since`: any event that names them, any event on one
    of their messages, a conversion, an assignment, a profile change. -#}
{% macro users_touched_since(since) -%}
    select user_id from {{ source('messaging', 'sends') }} where ingested_at > {{ since }} and user_id is not null
    union
    select user_id from {{ source('messaging', 'conversions') }} where ingested_at > {{ since }} and user_id is not null
    union
    -- the randomisation unit is the user; an assignment need not name user_id as well
    select unit_id from {{ source('messaging', 'assignments') }} where ingested_at > {{ since }} and unit_id is not null
    union
    select user_id from {{ source('messaging', 'assignments') }} where ingested_at > {{ since }} and user_id is not null
    union
    select user_id from {{ source('messaging', 'users') }} where ingested_at > {{ since }} and user_id is not null
    union
    select sends.user_id
    from {{ source('messaging', 'sends') }} as sends
    where sends.user_id is not null
      and sends.message_id in ({{ messages_touched_since(since) }})
{%- endmacro %}

{#- The newest ingested_at over the raw tables: the watermark an incremental model records. -#}
{% macro raw_ingested_through() -%}
    select max(ingested_at) as ingested_through from (
        select max(ingested_at) as ingested_at from {{ source('messaging', 'sends') }}
        union all select max(ingested_at) from {{ source('messaging', 'deliveries') }}
        union all select max(ingested_at) from {{ source('messaging', 'clicks') }}
        union all select max(ingested_at) from {{ source('messaging', 'dwells') }}
        union all select max(ingested_at) from {{ source('messaging', 'conversions') }}
        union all select max(ingested_at) from {{ source('messaging', 'assignments') }}
        union all select max(ingested_at) from {{ source('messaging', 'users') }}
        union all select max(ingested_at) from {{ source('messaging', 'replies') }}
    ) as latest
{%- endmacro %}

{#- The CTEs an incremental model starts with: `name` (the keys to recompute, from `query`; only
    when incremental) and `ingested_through` (always; stored on each row written, so tests can find
    this build's rows). Ends with a comma: the model's own CTEs follow. -#}
{% macro changed_keys_ctes(name, query) -%}
{% if is_incremental() %}
{{ name }} as (
    {{ query }}
),
{% endif %}

ingested_through as (
    {{ raw_ingested_through() }}
),
{%- endmacro %}

{#- For a model incremental by user: `affected_users`. -#}
{% macro changed_users_ctes() -%}
    {{ changed_keys_ctes('affected_users', users_touched_since(since_last_build()) if is_incremental() else '') }}
{%- endmacro %}

{#- For a model incremental by message: `affected_messages`. -#}
{% macro changed_messages_ctes() -%}
    {{ changed_keys_ctes('affected_messages', messages_touched_since(since_last_build()) if is_incremental() else '') }}
{%- endmacro %}
