with source as (
    select * from {{ source('messaging', 'conversions') }}
),

renamed as (
    select
        event_id as conversion_id,
        user_id,
        campaign_id,
        conversion_type,
        coalesce(value, 0) as revenue,
        currency,
        occurred_at as converted_at,
        ingested_at
    from source
),

final as (
    -- no dedupe here: the loader keeps event ids unique across batches (the source's unique test
    -- on event_id proves it), and one event has no versions
    select * from renamed
)

select * from final
