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
    select * from renamed
    -- the id decides; message_id leads the partition so that filters on it reach the raw scan
    qualify row_number() over (partition by message_id, dwell_id order by ingested_at desc) = 1
)

select * from final
