{#- Change detection for the incremental models.

    Every incremental model stores `ingested_through`, the newest raw ingested_at when it was
    built. The next build treats raw rows ingested after that watermark as new and recomputes
    every key they touch. Detection reads the append-only raw tables with a range filter on
    ingested_at (answered from their zone maps, so it costs little however large the tables
    grow); the models' own logic keeps reading staging. -#}

{#- The watermark of the model being built (only inside is_incremental()). An empty table has
    none: then every raw row counts as new. -#}
{% macro since_last_build() -%}
    (select coalesce(max(ingested_through), {{ before_any_data() }}) from {{ this }})
{%- endmacro %}

{#- A time before any event: the watermark of a model that holds nothing yet. -#}
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

{#- The CTEs an incremental-by-users model starts with: `affected_users` (only when incremental)
    and `ingested_through` (always; the model stores it for the next build). Ends with a comma:
    the model's own CTEs follow. `upstream_users` (a query of user ids) adds the users whose rows
    in an incremental parent were rewritten after this model's watermark: a parent built on its
    own (`--select`) since then would otherwise leave them behind. -#}
{% macro changed_users_ctes(upstream_users='') -%}
{% if is_incremental() %}
affected_users as (
    {{ users_touched_since(since_last_build()) }}
    {%- if upstream_users %}
    union
    {{ upstream_users }}
    {%- endif %}
),
{% endif %}

ingested_through as (
    {{ raw_ingested_through() }}
),
{%- endmacro %}

{#- Likewise for an incremental-by-messages model: `affected_messages` and `ingested_through`. -#}
{% macro changed_messages_ctes() -%}
{% if is_incremental() %}
affected_messages as (
    {{ messages_touched_since(since_last_build()) }}
),
{% endif %}

ingested_through as (
    {{ raw_ingested_through() }}
),
{%- endmacro %}
