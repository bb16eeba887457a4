{#- One row per message that has at least one receipt: its final status by precedence (never by
    arrival order), when it was first delivered, and the network facts the receipts carry. -#}
with receipts as (
    select * from {{ ref('stg_messaging__deliveries') }}
),

sends as (
    select message_id, provider_message_id from {{ ref('stg_messaging__sends') }}
),

precedence as (
    select * from {{ ref('delivery_status_precedence') }}
),

matched as (
    -- ingest joins receipts to sends by provider id; a send ingested after its receipts is joined here
    select
        coalesce(r.message_id, s.message_id) as message_id,
        r.receipt_id,
        r.status,
        r.error_code,
        r.carrier,
        r.region,
        r.receipt_at,
        coalesce(p.precedence, 0) as precedence,
        coalesce(p.is_delivered, false) as is_delivered
    from receipts as r
    left join sends as s
        on r.message_id is null and r.provider_message_id = s.provider_message_id
    left join precedence as p
        on r.status = p.status
),

final_status as (
    select message_id, status as final_status, receipt_at as final_status_at, error_code as final_error_code
    from matched
    where message_id is not null
    qualify row_number() over (partition by message_id order by precedence desc, receipt_at desc, receipt_id) = 1
),

summary as (
    select
        message_id,
        count(*) as receipts,
        min(case when is_delivered then receipt_at end) as delivered_at,
        min(receipt_at) as first_receipt_at,
        max(receipt_at) as last_receipt_at,
        max(carrier) as receipt_carrier,
        max(region) as receipt_region
    from matched
    where message_id is not null
    group by message_id
),

final as (
    select
        summary.message_id,
        final_status.final_status,
        final_status.final_status_at,
        final_status.final_error_code,
        summary.receipts,
        summary.delivered_at,
        summary.first_receipt_at,
        summary.last_receipt_at,
        summary.receipt_carrier,
        summary.receipt_region
    from summary
    inner join final_status on summary.message_id = final_status.message_id
)

select * from final
