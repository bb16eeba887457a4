{#- One row per experiment the warehouse knows of: every defined experiment (its newest definition)
    and every experiment with assignments but no definition (has_definition false: the results job
    reports it as no_definition and never guesses a control). With the units assigned so far and
    the first and last assignment. -#}
with definitions as (
    select * from {{ ref('stg_messaging__experiments') }}
),

exposures as (
    select
        experiment_id,
        count(distinct unit_id) as units_assigned,
        min(assigned_at) as first_assigned_at,
        max(assigned_at) as last_assigned_at
    from {{ ref('stg_messaging__assignments') }}
    where experiment_id is not null
    group by experiment_id
),

known as (
    select experiment_id from definitions
    union
    select experiment_id from exposures
),

final as (
    select
        known.experiment_id,
        definitions.experiment_id is not null as has_definition,
        definitions.experiment_name,
        definitions.hypothesis,
        definitions.owner,
        definitions.unit,
        definitions.campaign_id,
        definitions.variants_json,
        definitions.control,
        definitions.goal_metrics_json,
        definitions.secondary_metrics_json,
        definitions.guardrail_metrics_json,
        definitions.metric_tests_json,
        definitions.bayes_prior_json,
        definitions.alpha,
        definitions.start_at,
        definitions.end_at,
        definitions.status,
        definitions.defined_at,
        coalesce(exposures.units_assigned, 0) as units_assigned,
        exposures.first_assigned_at,
        exposures.last_assigned_at
    from known
    left join definitions on definitions.experiment_id = known.experiment_id
    left join exposures on exposures.experiment_id = known.experiment_id
)

select * from final
