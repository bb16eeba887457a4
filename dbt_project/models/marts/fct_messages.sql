{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        unique_key='message_id',
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook="{{ record_watermark() }}"
    )
}}
{#- One row per message: every lifecycle timestamp and flag, with attribution.

    Incremental by changed keys: a build recomputes every message of every user touched by an
    event ingested since the previous build (a late receipt, a click, a conversion that may move
    credit between two messages, a profile change), so a sequence of incremental builds gives
    exactly the table a full refresh gives. -#}

with

{{ changed_users_ctes() }}

sends as (
    {% if is_incremental() %}
    -- stg_messaging__sends for the touched users only (see macros/staged_sends.sql)
    select * from ({{ staged_sends(messages_of_users('select user_id from affected_users')) }}) as touched
    where user_id in (select user_id from affected_users)
    {% else %}
    select * from {{ ref('stg_messaging__sends') }}
    {% endif %}
),

users as (
    select * from {{ ref('stg_messaging__users') }}
    {% if is_incremental() %}
    where user_id in (select user_id from affected_users)
    {% endif %}
),

receipts as (
    select * from {{ ref('int_receipts_aggregated_to_messages') }}
    {% if is_incremental() %}
    where message_id in (select message_id from sends)
    {% endif %}
),

clicks as (
    select * from {{ ref('int_clicks_aggregated_to_messages') }}
    {% if is_incremental() %}
    where message_id in (select message_id from sends)
    {% endif %}
),

dwells as (
    select * from {{ ref('int_dwells_aggregated_to_messages') }}
    {% if is_incremental() %}
    where message_id in (select message_id from sends)
    {% endif %}
),

attributed as (
    select
        attributed_message_id as message_id,
        count(*) as attributed_conversions,
        sum(revenue) as attributed_revenue,
        min(converted_at) as first_converted_at
    from {{ ref('int_conversions_attributed_to_messages') }}
    where attributed_message_id is not null
    {% if is_incremental() %}
        and user_id in (select user_id from affected_users)
    {% endif %}
    group by attributed_message_id
),

joined as (
    select
        sends.message_id,
        sends.user_id,
        sends.campaign_id,
        sends.template_id,
        sends.variant,
        sends.experiment_id,
        sends.channel,
        sends.provider,
        sends.category,
        sends.priority,
        sends.sent_at,
        cast({{ dbt.date_trunc('day', 'sends.sent_at') }} as date) as send_date,
        users.segment,
        coalesce(users.region, receipts.receipt_region) as region,
        coalesce(users.carrier, receipts.receipt_carrier) as carrier,
        users.country,
        users.timezone,
        {{ hour_of_day(to_local_time('sends.sent_at', 'users.timezone')) }} as send_hour_local,
        {{ iso_day_of_week(to_local_time('sends.sent_at', 'users.timezone')) }} as send_dow_local,
        receipts.final_status,
        receipts.final_status_at,
        receipts.final_error_code,
        coalesce(receipts.receipts, 0) as receipts,
        receipts.delivered_at,
        clicks.first_human_click_at,
        coalesce(clicks.human_clicks, 0) as human_clicks,
        coalesce(clicks.bot_clicks, 0) as bot_clicks,
        dwells.max_dwell_seconds,
        dwells.engaged_at,
        coalesce(attributed.attributed_conversions, 0) as attributed_conversions,
        coalesce(attributed.attributed_revenue, 0) as attributed_revenue,
        attributed.first_converted_at
    from sends
    left join users on sends.user_id = users.user_id
    left join receipts on sends.message_id = receipts.message_id
    left join clicks on sends.message_id = clicks.message_id
    left join dwells on sends.message_id = dwells.message_id
    left join attributed on sends.message_id = attributed.message_id
),

final as (
    select
        joined.*,
        -- a human click proves delivery even when the receipt is late or lost
        (coalesce(final_status = 'delivered', false) or first_human_click_at is not null) as is_delivered,
        (first_human_click_at is not null) as is_clicked,
        (first_human_click_at is not null and coalesce(max_dwell_seconds, 0) >= {{ var('engaged_dwell_seconds') }}) as is_engaged,
        (attributed_conversions > 0) as is_converted,
        case when delivered_at is not null then {{ seconds_between('sent_at', 'delivered_at') }} end as seconds_to_delivery,
        case when first_human_click_at is not null then {{ seconds_between('sent_at', 'first_human_click_at') }} end as seconds_to_click,
        (select ingested_through from ingested_through) as ingested_through
    from joined
)

select * from final
