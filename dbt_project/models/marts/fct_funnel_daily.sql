{#- The funnel by day (UTC send date) × campaign × template × variant × channel × segment × region
    × carrier: sent → delivered → clicked (human) → engaged (dwell ≥ threshold) → converted
    (engaged and credited with a conversion). Each step is a subset of the one before. -#}
with messages as (
    select * from {{ ref('fct_messages') }}
),

final as (
    select
        send_date,
        campaign_id,
        coalesce(template_id, '(none)') as template_id,
        coalesce(variant, '(none)') as variant,
        channel,
        coalesce(segment, '(unknown)') as segment,
        coalesce(region, '(unknown)') as region,
        coalesce(carrier, '(unknown)') as carrier,
        count(*) as sent,
        sum(case when is_delivered then 1 else 0 end) as delivered,
        sum(case when is_clicked then 1 else 0 end) as clicked,
        sum(case when is_engaged then 1 else 0 end) as engaged,
        sum(case when is_engaged and is_converted then 1 else 0 end) as converted,
        sum(case when is_converted then 1 else 0 end) as messages_with_conversion,
        sum(attributed_conversions) as attributed_conversions,
        sum(attributed_revenue) as revenue,
        sum(human_clicks) as human_clicks,
        sum(bot_clicks) as bot_clicks
    from messages
    group by 1, 2, 3, 4, 5, 6, 7, 8
)

select * from final
