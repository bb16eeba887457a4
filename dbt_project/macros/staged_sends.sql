{#- The body of stg_messaging__sends: sends renamed, rows without a message id dropped, and a
    message whose send was recorded more than once kept once (the latest ingested, then the
    greatest event id).

    `messages` (optional) is a query of message ids to keep. Incremental models pass it to read a
    few messages without computing the dedupe over every send: DuckDB cannot push a semi-join below
    a ranking window, so the filter has to come before it. The filter keeps every recorded version
    of a kept message, so the dedupe gives what the view gives for it. -#}
{% macro staged_sends(messages=none) -%}
with source as (
    select * from {{ source('messaging', 'sends') }}
    where message_id is not null
    {%- if messages %}
      and message_id in ({{ messages }})
    {%- endif %}
),

renamed as (
    select
        message_id,
        event_id,
        user_id,
        campaign_id,
        channel,
        template_id,
        variant,
        experiment_id,
        provider,
        provider_message_id,
        recipient_hash,
        encoding,
        segments,
        priority,
        category,
        occurred_at as sent_at,
        scheduled_for,
        ingested_at
    from source
),

final as (
    select * from renamed
    qualify row_number() over (partition by message_id order by ingested_at desc, event_id desc) = 1
)

select * from final
{%- endmacro %}

{#- The message ids of users' sends (every version), for staged_sends(messages=...). -#}
{% macro messages_of_users(users) -%}
    select message_id from {{ source('messaging', 'sends') }} where user_id in ({{ users }})
{%- endmacro %}
