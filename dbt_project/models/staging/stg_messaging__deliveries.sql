with source as (
    select * from {{ source('messaging', 'deliveries') }}
),

renamed as (
    select
        event_id as receipt_id,
        message_id,
        user_id,
        provider,
        provider_message_id,
        status,
        provider_status,
        error_code,
        carrier,
        country,
        region,
        occurred_at as receipt_at,
        ingested_at
    from source
),

final as (
    -- no dedupe here: the loader keeps event ids unique across batches (the source's unique test
    -- on event_id proves it), and one event has no versions
    select * from renamed
)

select * from final
