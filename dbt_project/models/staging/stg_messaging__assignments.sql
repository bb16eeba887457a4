with source as (
    select * from {{ source('messaging', 'assignments') }}
),

renamed as (
    select
        event_id as assignment_id,
        experiment_id,
        variant,
        unit_id,
        user_id,
        occurred_at as assigned_at,
        ingested_at
    from source
),

final as (
    select * from renamed
    qualify row_number() over (partition by assignment_id order by ingested_at desc) = 1
)

select * from final
