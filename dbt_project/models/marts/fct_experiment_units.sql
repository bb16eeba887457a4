{{
    config(
        materialized=('table' if target.type == 'spark' else 'incremental'),
        unique_key=['experiment_id', 'unit_id'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        post_hook="{{ record_watermark() }}"
    )
}}
{#- One row per experiment × unit (the randomisation unit is the user): its arm, first exposure (its
    first assignment), outcomes inside the metric window after exposure, and pre-exposure
    covariates for CUPED over the lookback before it. A unit assigned to two arms is kept, flagged
    and left out of the statistics. Incremental like fct_messages: every unit whose user was touched
    by an event ingested since the previous build is recomputed. -#}
with

{{ changed_users_ctes() }}

assignments as (
    select * from {{ ref('stg_messaging__assignments') }}
    {% if is_incremental() %}
    where unit_id in (select user_id from affected_users)
    {% endif %}
),

units as (
    select
        experiment_id,
        unit_id,
        min(assigned_at) as first_exposure_at,
        count(distinct variant) as arms_assigned
    from assignments
    group by experiment_id, unit_id
),

first_arm as (
    select experiment_id, unit_id, variant
    from assignments
    qualify row_number() over (partition by experiment_id, unit_id order by assigned_at, assignment_id) = 1
),

exposed as (
    select
        units.experiment_id,
        units.unit_id,
        first_arm.variant,
        units.first_exposure_at,
        cast({{ dbt.date_trunc('day', 'units.first_exposure_at') }} as date) as exposure_date,
        units.arms_assigned,
        (units.arms_assigned = 1) as is_valid_unit,
        {{ dbt.dateadd('day', var('metric_window_days'), 'units.first_exposure_at') }} as window_end_at,
        {{ dbt.dateadd('day', -1 * var('cuped_lookback_days'), 'units.first_exposure_at') }} as lookback_start_at
    from units
    inner join first_arm
        on units.experiment_id = first_arm.experiment_id and units.unit_id = first_arm.unit_id
),

messages as (
    select * from {{ ref('fct_messages') }}
    {% if is_incremental() %}
    where user_id in (select unit_id from exposed)
    {% endif %}
),

conversions as (
    select * from {{ ref('stg_messaging__conversions') }}
    {% if is_incremental() %}
    where user_id in (select unit_id from exposed)
    {% endif %}
),

message_outcomes as (
    select
        exposed.experiment_id,
        exposed.unit_id,
        count(*) as messages_sent,
        sum(case when messages.is_delivered then 1 else 0 end) as messages_delivered,
        sum(case when messages.is_clicked then 1 else 0 end) as messages_clicked,
        sum(case when messages.is_engaged then 1 else 0 end) as messages_engaged,
        sum(case when messages.is_converted then 1 else 0 end) as messages_converted
    from exposed
    inner join messages
        on messages.user_id = exposed.unit_id
        and messages.experiment_id = exposed.experiment_id
        and messages.sent_at >= exposed.first_exposure_at
        and messages.sent_at < exposed.window_end_at
    group by 1, 2
),

conversion_outcomes as (
    select
        exposed.experiment_id,
        exposed.unit_id,
        sum(case when conversions.converted_at >= exposed.first_exposure_at
                  and conversions.converted_at < exposed.window_end_at then 1 else 0 end) as conversions,
        sum(case when conversions.converted_at >= exposed.first_exposure_at
                  and conversions.converted_at < exposed.window_end_at then conversions.revenue else 0 end) as revenue,
        sum(case when conversions.converted_at >= exposed.lookback_start_at
                  and conversions.converted_at < exposed.first_exposure_at then 1 else 0 end) as pre_conversions,
        sum(case when conversions.converted_at >= exposed.lookback_start_at
                  and conversions.converted_at < exposed.first_exposure_at then conversions.revenue else 0 end) as pre_revenue
    from exposed
    inner join conversions
        on conversions.user_id = exposed.unit_id
        and conversions.converted_at >= exposed.lookback_start_at
        and conversions.converted_at < exposed.window_end_at
    group by 1, 2
),

pre_clicks as (
    select
        exposed.experiment_id,
        exposed.unit_id,
        sum(case when messages.is_clicked then 1 else 0 end) as pre_messages_clicked,
        sum(case when messages.is_delivered then 1 else 0 end) as pre_messages_delivered
    from exposed
    inner join messages
        on messages.user_id = exposed.unit_id
        and messages.sent_at >= exposed.lookback_start_at
        and messages.sent_at < exposed.first_exposure_at
    group by 1, 2
),

users as (
    select user_id, segment, region, carrier from {{ ref('stg_messaging__users') }}
),

final as (
    select
        exposed.experiment_id,
        exposed.variant,
        exposed.unit_id,
        exposed.first_exposure_at,
        exposed.exposure_date,
        exposed.arms_assigned,
        exposed.is_valid_unit,
        coalesce(users.segment, '(unknown)') as segment,
        coalesce(users.region, '(unknown)') as region,
        coalesce(users.carrier, '(unknown)') as carrier,
        coalesce(message_outcomes.messages_sent, 0) as messages_sent,
        coalesce(message_outcomes.messages_delivered, 0) as messages_delivered,
        coalesce(message_outcomes.messages_clicked, 0) as messages_clicked,
        coalesce(message_outcomes.messages_engaged, 0) as messages_engaged,
        coalesce(message_outcomes.messages_converted, 0) as messages_converted,
        coalesce(conversion_outcomes.conversions, 0) as conversions,
        coalesce(conversion_outcomes.revenue, 0) as revenue,
        case when coalesce(conversion_outcomes.conversions, 0) > 0 then 1 else 0 end as converted,
        case when coalesce(message_outcomes.messages_clicked, 0) > 0 then 1 else 0 end as clicked,
        coalesce(conversion_outcomes.pre_conversions, 0) as pre_conversions,
        coalesce(conversion_outcomes.pre_revenue, 0) as pre_revenue,
        coalesce(pre_clicks.pre_messages_clicked, 0) as pre_messages_clicked,
        coalesce(pre_clicks.pre_messages_delivered, 0) as pre_messages_delivered,
        (select ingested_through from ingested_through) as ingested_through
    from exposed
    left join message_outcomes
        on exposed.experiment_id = message_outcomes.experiment_id and exposed.unit_id = message_outcomes.unit_id
    left join conversion_outcomes
        on exposed.experiment_id = conversion_outcomes.experiment_id and exposed.unit_id = conversion_outcomes.unit_id
    left join pre_clicks
        on exposed.experiment_id = pre_clicks.experiment_id and exposed.unit_id = pre_clicks.unit_id
    left join users on exposed.unit_id = users.user_id
)

select * from final
