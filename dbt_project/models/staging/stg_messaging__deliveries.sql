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
    select * from renamed
    -- the id decides; message_id leads the partition so that filters on it reach the raw scan
    qualify row_number() over (partition by message_id, receipt_id order by ingested_at desc) = 1
)

select * from final
