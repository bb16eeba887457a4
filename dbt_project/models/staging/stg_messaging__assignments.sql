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
    -- no dedupe here: the loader keeps event ids unique across batches (the source's unique test
    -- on event_id proves it), and one event has no versions
    select * from renamed
)

select * from final
