{#- Users touched by any event ingested after `since` (a SQL expression): the changed keys of the
    incremental marts. A receipt that carries only the provider's id reaches its user through the
    send with that id; a profile change touches its user too. -#}
{% macro users_touched_since(since) -%}
    select distinct coalesce(touched.user_id, sends.user_id) as user_id
    from (
        select user_id, message_id from {{ ref('stg_messaging__sends') }} where ingested_at > {{ since }}
        union all
        select user_id, message_id from {{ ref('stg_messaging__deliveries') }} where ingested_at > {{ since }}
        union all
        select user_id, message_id from {{ ref('stg_messaging__clicks') }} where ingested_at > {{ since }}
        union all
        select user_id, message_id from {{ ref('stg_messaging__dwells') }} where ingested_at > {{ since }}
        union all
        select user_id, cast(null as {{ dbt.type_string() }}) from {{ ref('stg_messaging__conversions') }} where ingested_at > {{ since }}
        union all
        select user_id, cast(null as {{ dbt.type_string() }}) from {{ ref('stg_messaging__assignments') }} where ingested_at > {{ since }}
        union all
        select user_id, cast(null as {{ dbt.type_string() }}) from {{ source('messaging', 'users') }} where ingested_at > {{ since }}
        union all
        select cast(null as {{ dbt.type_string() }}), s.message_id
        from {{ ref('stg_messaging__deliveries') }} as d
        inner join {{ ref('stg_messaging__sends') }} as s
            on d.message_id is null and d.provider_message_id = s.provider_message_id
        where d.ingested_at > {{ since }}
    ) as touched
    left join {{ ref('stg_messaging__sends') }} as sends
        on touched.user_id is null and touched.message_id = sends.message_id
{%- endmacro %}

{#- The newest ingested_at over the raw tables: the watermark an incremental mart records. -#}
{% macro raw_ingested_through() -%}
    select max(ingested_at) as ingested_through from (
        select max(ingested_at) as ingested_at from {{ source('messaging', 'sends') }}
        union all select max(ingested_at) from {{ source('messaging', 'deliveries') }}
        union all select max(ingested_at) from {{ source('messaging', 'clicks') }}
        union all select max(ingested_at) from {{ source('messaging', 'dwells') }}
        union all select max(ingested_at) from {{ source('messaging', 'conversions') }}
        union all select max(ingested_at) from {{ source('messaging', 'assignments') }}
        union all select max(ingested_at) from {{ source('messaging', 'users') }}
    ) as latest
{%- endmacro %}

{#- The CTEs an incremental-by-users mart starts with: `watermark` and `affected_users` (only when
    incremental) and `ingested_through` (always; the mart stores it for the next build). Ends with a
    comma: the model's own CTEs follow. -#}
{% macro changed_users_ctes() -%}
{% if is_incremental() %}
watermark as (
    select max(ingested_through) as since from {{ this }}
),

affected_users as (
    {{ users_touched_since('(select since from watermark)') }}
),
{% endif %}

ingested_through as (
    {{ raw_ingested_through() }}
),
{%- endmacro %}
