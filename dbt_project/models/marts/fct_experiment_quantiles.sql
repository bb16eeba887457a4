{#- Per experiment × variant × quantile metric: a histogram of the units' values on log-spaced
    buckets (bucket b holds values in [1.05^b − 1, 1.05^(b+1) − 1) seconds: about 5 % wide), the
    sufficient statistics of medians and p90s. A unit's value is its longest landing-page visit
    (dwell_seconds) or its quickest human click after sending (seconds_to_click) among its messages
    inside the metric window after exposure; units without a visit (or a click) are not in that
    histogram, so the quantiles are among units that visited (clicked). Valid units only. -#}
with

units as (
    select
        experiment_id,
        variant,
        unit_id,
        first_exposure_at,
        {{ dbt.dateadd('day', var('metric_window_days'), 'first_exposure_at') }} as window_end_at
    from {{ ref('fct_experiment_units') }}
    where is_valid_unit
),

messages as (
    select user_id, experiment_id, sent_at, max_dwell_seconds, seconds_to_click
    from {{ ref('fct_messages') }}
    where experiment_id is not null and (max_dwell_seconds is not null or seconds_to_click is not null)
),

per_unit as (
    select
        units.experiment_id,
        units.variant,
        units.unit_id,
        max(messages.max_dwell_seconds) as dwell_seconds,
        min(messages.seconds_to_click) as seconds_to_click
    from units
    inner join messages
        on messages.user_id = units.unit_id
        and messages.experiment_id = units.experiment_id
        and messages.sent_at >= units.first_exposure_at
        and messages.sent_at < units.window_end_at
    group by 1, 2, 3
),

values_long as (
    select experiment_id, variant, 'dwell_seconds' as metric, cast(dwell_seconds as {{ dbt.type_float() }}) as value
    from per_unit where dwell_seconds is not null
    union all
    select experiment_id, variant, 'seconds_to_click' as metric, cast(seconds_to_click as {{ dbt.type_float() }}) as value
    from per_unit where seconds_to_click is not null
),

final as (
    select
        experiment_id,
        variant,
        metric,
        cast(floor(ln(1 + greatest(value, 0)) / ln(1.05)) as {{ dbt.type_int() }}) as bucket,
        count(*) as units
    from values_long
    group by 1, 2, 3, 4
)

select * from final
