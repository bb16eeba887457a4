with source as (
    select * from {{ source('messaging', 'users') }}
),

renamed as (
    select
        user_id,
        segment,
        region,
        country,
        carrier,
        coalesce(timezone, 'UTC') as timezone,
        consent_sms,
        consent_email,
        consent_push,
        active_hours,
        occurred_at as profile_updated_at,
        ingested_at,
        event_id
    from source
    where user_id is not null
),

final as (
    -- last write wins: the newest profile version per user
    select * from renamed
    qualify row_number() over (partition by user_id order by profile_updated_at desc, ingested_at desc, event_id desc) = 1
)

select * from final
