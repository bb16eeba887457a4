{#- One row per conversion, with the message credited for it (or none). Last touch by default: the
    latest message sent to the same user within the attribution window before the conversion; with
    attribution_model = last_click, the latest such message that the user clicked (as a human)
    before converting. Two messages competing for one conversion: the later one wins (ties broken
    by message id, so the answer never depends on the engine). -#}

{#- Incremental by user: a build recomputes every conversion of every user touched since the last
    one (a new conversion, a late send that may now win the credit, a click for last_click). -#}
{{ config(unique_key='conversion_id') }}

with

{{ changed_users_ctes() }}

conversions as (
    select * from {{ ref('stg_messaging__conversions') }}
    {% if is_incremental() %}
    where user_id in (select user_id from affected_users)
    {% endif %}
),

messages as (
    select sends.message_id, sends.user_id, sends.sent_at, clicks.first_human_click_at
    {% if is_incremental() %}
    -- stg_messaging__sends for the touched users only (see macros/staged_sends.sql)
    from ({{ staged_sends(messages_of_users('select user_id from affected_users')) }}) as sends
    {% else %}
    from {{ ref('stg_messaging__sends') }} as sends
    {% endif %}
    left join {{ ref('int_clicks_aggregated_to_messages') }} as clicks
        on sends.message_id = clicks.message_id
    {% if is_incremental() %}
    where sends.user_id in (select user_id from affected_users)
    {% endif %}
),

candidates as (
    select
        conversions.conversion_id,
        conversions.user_id,
        messages.message_id,
        messages.sent_at
    from conversions
    inner join messages
        on conversions.user_id = messages.user_id
        and messages.sent_at <= conversions.converted_at
        and conversions.converted_at < {{ dbt.dateadd('hour', var('attribution_window_hours'), 'messages.sent_at') }}
    {% if var('attribution_model') == 'last_click' %}
        and messages.first_human_click_at is not null
        and messages.first_human_click_at <= conversions.converted_at
    {% endif %}
),

credited as (
    select conversion_id, {{ value_at_max('message_id', ['sent_at', 'message_id']) }} as message_id
    from candidates
    group by conversion_id
),

final as (
    select
        conversions.conversion_id,
        conversions.user_id,
        conversions.conversion_type,
        conversions.revenue,
        conversions.currency,
        conversions.converted_at,
        conversions.ingested_at,
        credited.message_id as attributed_message_id,
        (select ingested_through from ingested_through) as ingested_through
    from conversions
    left join credited on conversions.conversion_id = credited.conversion_id
)

select * from final
