with source as (
    select * from {{ source('messaging', 'sends') }}
),

renamed as (
    select
        message_id,
        event_id,
        user_id,
        campaign_id,
        channel,
        template_id,
        variant,
        experiment_id,
        provider,
        provider_message_id,
        recipient_hash,
        encoding,
        segments,
        priority,
        occurred_at as sent_at,
        scheduled_for,
        ingested_at
    from source
    where message_id is not null
),

final as (
    select * from renamed
    qualify row_number() over (partition by message_id order by ingested_at desc, event_id desc) = 1
)

select * from final
