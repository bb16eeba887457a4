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
    select * from renamed
    qualify row_number() over (partition by user_id, conversion_id order by ingested_at desc) = 1
)

select * from final
