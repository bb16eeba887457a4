{#- Hourly numerators and denominators per campaign × channel × provider × region × carrier, by the
    hour messages were sent (a cohort: receipts, clicks and conversions are credited to the hour of
    their message), zero-filled for every hour of the data's span: the input of anomaly baselines. -#}
with messages as (
    select
        {{ dbt.date_trunc('hour', 'sent_at') }} as hour_at,
        coalesce(campaign_id, '(none)') as campaign_id,
        coalesce(channel, '(none)') as channel,
        coalesce(provider, '(none)') as provider,
        coalesce(region, '(unknown)') as region,
        coalesce(carrier, '(unknown)') as carrier,
        is_delivered,
        is_clicked,
        is_converted,
        final_status
    from {{ ref('fct_messages') }}
),

hourly as (
    select
        hour_at, campaign_id, channel, provider, region, carrier,
        count(*) as sent,
        sum(case when is_delivered then 1 else 0 end) as delivered,
        sum(case when final_status in ('failed', 'undelivered', 'rejected', 'expired') then 1 else 0 end) as failed,
        sum(case when is_clicked then 1 else 0 end) as clicked,
        sum(case when is_converted then 1 else 0 end) as converted
    from messages
    group by 1, 2, 3, 4, 5, 6
),

bounds as (
    select min(hour_at) as start_at, max(hour_at) as end_at from hourly
),

spine as (
    {{ hour_spine('bounds') }}
),

slices as (
    select distinct campaign_id, channel, provider, region, carrier from hourly
),

final as (
    select
        spine.hour_at,
        slices.campaign_id,
        slices.channel,
        slices.provider,
        slices.region,
        slices.carrier,
        coalesce(hourly.sent, 0) as sent,
        coalesce(hourly.delivered, 0) as delivered,
        coalesce(hourly.failed, 0) as failed,
        coalesce(hourly.clicked, 0) as clicked,
        coalesce(hourly.converted, 0) as converted
    from spine
    cross join slices
    left join hourly
        on hourly.hour_at = spine.hour_at
        and hourly.campaign_id = slices.campaign_id
        and hourly.channel = slices.channel
        and hourly.provider = slices.provider
        and hourly.region = slices.region
        and hourly.carrier = slices.carrier
)

select * from final
