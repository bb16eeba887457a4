{#- One row per message that has at least one receipt: its final status by precedence (never by
    arrival order), when it was first delivered, and the network facts the receipts carry. -#}
{#- delete+insert replaces the keys a build writes; a touched message may now have no receipt at
    all (its receipts matched an older provider id of a send recorded again), so every touched
    message's row goes first. -#}
{{ config(pre_hook="{% if is_incremental() %}delete from {{ this }} where message_id in ({{ messages_touched_since(since_last_build()) }}){% endif %}") }}

with

{{ changed_messages_ctes() }}

sends as (
    {% if is_incremental() %}
    -- stg_messaging__sends for the touched messages only (see macros/staged_sends.sql)
    select message_id, provider_message_id from ({{ staged_sends('select message_id from affected_messages') }}) as touched
    {% else %}
    select message_id, provider_message_id from {{ ref('stg_messaging__sends') }}
    {% endif %}
),

receipts as (
    select * from {{ ref('stg_messaging__deliveries') }}
    {% if is_incremental() %}
    -- a touched message's receipts: those naming it, and those that carry only its provider id
    where message_id in (select message_id from affected_messages)
       or (message_id is null and provider_message_id in (select provider_message_id from sends))
    {% endif %}
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

summary as (
    -- the final status is the receipt of highest precedence (ties: the later, then the larger id)
    select
        message_id,
        {{ value_at_max('status', ['precedence', 'receipt_at', 'receipt_id']) }} as final_status,
        {{ value_at_max('receipt_at', ['precedence', 'receipt_at', 'receipt_id']) }} as final_status_at,
        {{ value_at_max('error_code', ['precedence', 'receipt_at', 'receipt_id']) }} as final_error_code,
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
        message_id,
        final_status,
        final_status_at,
        final_error_code,
        receipts,
        delivered_at,
        first_receipt_at,
        last_receipt_at,
        receipt_carrier,
        receipt_region,
        (select ingested_through from ingested_through) as ingested_through
    from summary
)

select * from final
