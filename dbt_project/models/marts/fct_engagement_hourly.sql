{#- Engagement by hour of week in the recipient's local time (ISO day 1 = Monday, hour 0–23) ×
    campaign × template × segment × channel: the heat map analysts use to choose send times. Bot
    clicks are counted apart and never in the rates. -#}
with messages as (
    select * from {{ ref('fct_messages') }}
),

final as (
    select
        send_dow_local as day_of_week,
        send_hour_local as hour_of_day,
        (send_dow_local - 1) * 24 + send_hour_local as hour_of_week,
        campaign_id,
        coalesce(template_id, '(none)') as template_id,
        coalesce(segment, '(unknown)') as segment,
        channel,
        count(*) as sent,
        sum(case when is_delivered then 1 else 0 end) as delivered,
        sum(case when is_clicked then 1 else 0 end) as clicked,
        sum(case when is_engaged then 1 else 0 end) as engaged,
        sum(case when is_converted then 1 else 0 end) as converted,
        sum(human_clicks) as human_clicks,
        sum(bot_clicks) as bot_clicks,
        case when sum(case when is_delivered then 1 else 0 end) > 0
            then cast(sum(case when is_clicked then 1 else 0 end) as {{ dbt.type_float() }})
                 / sum(case when is_delivered then 1 else 0 end) end as click_rate
    from messages
    group by 1, 2, 3, 4, 5, 6, 7
)

select * from final
