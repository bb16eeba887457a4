{#- One row per experiment: the newest version of its definition (latest defined_at, then latest
    ingested) wins; JSON lists stay JSON text for the marts and the results job to read. -#}
with source as (
    select * from {{ source('messaging', 'experiments') }}
),

renamed as (
    select
        experiment_id,
        name as experiment_name,
        hypothesis,
        owner,
        coalesce(unit, 'user') as unit,
        campaign_id,
        cast(variants as {{ dbt.type_string() }}) as variants_json,
        control,
        cast(goal_metrics as {{ dbt.type_string() }}) as goal_metrics_json,
        coalesce(cast(secondary_metrics as {{ dbt.type_string() }}), '[]') as secondary_metrics_json,
        coalesce(cast(guardrail_metrics as {{ dbt.type_string() }}), '[]') as guardrail_metrics_json,
        coalesce(cast(metric_tests as {{ dbt.type_string() }}), '{}') as metric_tests_json,
        cast(bayes_prior as {{ dbt.type_string() }}) as bayes_prior_json,
        coalesce(alpha, 0.05) as alpha,
        start_at,
        end_at,
        coalesce(status, 'running') as status,
        occurred_at as defined_at,
        ingested_at,
        event_id
    from source
    where experiment_id is not null
),

final as (
    -- last write wins: the newest definition per experiment
    select * from renamed
    qualify row_number() over (partition by experiment_id order by defined_at desc, ingested_at desc, event_id desc) = 1
)

select * from final
