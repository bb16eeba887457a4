{#- Hourly numerators and denominators per campaign × channel × provider × region × carrier, by the
    hour messages were sent (a cohort: receipts, clicks and conversions are credited to the hour of
    their message): the input of anomaly baselines. Each slice is zero-filled from its first hour
    with messages to the newest hour of all (a slice that falls silent shows as zeros), within the
    last `timeseries_history_days` before that newest hour: so one stray early message costs no
    more than the hours it falls in, not a spine from it to now for every slice. -#}
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

newest as (
    select max(hour_at) as end_at from hourly
),

recent as (
    select hourly.*
    from hourly
    cross join newest
    where hourly.hour_at > {{ dbt.dateadd('day', -1 * var('timeseries_history_days'), 'newest.end_at') }}
),

slices as (
    select
        recent.campaign_id, recent.channel, recent.provider, recent.region, recent.carrier,
        min(recent.hour_at) as start_at,
        max(newest.end_at) as end_at
    from recent
    cross join newest
    group by 1, 2, 3, 4, 5
),

spine as (
    {{ hour_spine('slices', ['campaign_id', 'channel', 'provider', 'region', 'carrier']) }}
),

final as (
    select
        spine.hour_at,
        spine.campaign_id,
        spine.channel,
        spine.provider,
        spine.region,
        spine.carrier,
        coalesce(recent.sent, 0) as sent,
        coalesce(recent.delivered, 0) as delivered,
        coalesce(recent.failed, 0) as failed,
        coalesce(recent.clicked, 0) as clicked,
        coalesce(recent.converted, 0) as converted
    from spine
    left join recent
        on recent.hour_at = spine.hour_at
        and recent.campaign_id = spine.campaign_id
        and recent.channel = spine.channel
        and recent.provider = spine.provider
        and recent.region = spine.region
        and recent.carrier = spine.carrier
)

select * from final
