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
    select * from renamed
    qualify row_number() over (partition by reply_id order by ingested_at desc) = 1
)

select * from final
