with source as (
    select * from {{ source('messaging', 'dwells') }}
),

renamed as (
    select
        event_id as dwell_id,
        message_id,
        user_id,
        page,
        dwell_seconds,
        occurred_at as visited_at,
        ingested_at
    from source
),

final as (
    -- no dedupe here: the loader keeps event ids unique across batches (the source's unique test
    -- on event_id proves it), and one event has no versions
    select * from renamed
)

select * from final
