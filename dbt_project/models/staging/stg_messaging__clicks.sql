with source as (
    select * from {{ source('messaging', 'clicks') }}
),

renamed as (
    select
        event_id as click_id,
        message_id,
        user_id,
        campaign_id,
        channel,
        link_id,
        url,
        user_agent,
        ip_hash,
        is_bot,
        bot_reason,
        -- e-mail opens arrive as clicks on a pseudo-link (see ingest/vendor_statuses.py); they are not clicks
        coalesce(link_id = 'email_open', false) as is_open,
        occurred_at as clicked_at,
        ingested_at
    from source
),

final as (
    -- no dedupe here: the loader keeps event ids unique across batches (the source's unique test
    -- on event_id proves it), and one event has no versions
    select * from renamed
)

select * from final
