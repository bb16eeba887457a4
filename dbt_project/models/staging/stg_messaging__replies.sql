with source as (
    select * from {{ source('messaging', 'replies') }}
),

renamed as (
    select
        event_id as reply_id,
        user_id,
        channel,
        text,
        upper(trim(keyword)) as keyword,
        in_reply_to,
        sender_hash,
        occurred_at as replied_at,
        ingested_at
    from source
),

final as (
    -- no dedupe here: the loader keeps event ids unique across batches (the source's unique test
    -- on event_id proves it), and one event has no versions
    select * from renamed
)

select * from final
