{#- Sufficient statistics per experiment × variant × metric × dimension value × exposure day, daily
    and cumulative: n, Σx, Σx², and Σy, Σy², Σxy where the metric needs a second variable (the
    denominator of a ratio metric, or the pre-exposure covariate for CUPED), and for a ratio metric
    its CUPED covariate z (Σz, Σz², Σxz, Σyz; 0 for the other metrics). Sums add, so any
    roll-up is a sum of rows; the stats engine needs nothing else. -#}
with units as (
    select * from {{ ref('fct_experiment_units') }}
    where is_valid_unit
),

metric_values as (
    -- metric_type: proportion and mean use x (and y = covariate for CUPED); ratio uses x / y
    select experiment_id, variant, unit_id, exposure_date, segment, region, carrier,
           'click_through' as metric, 'ratio' as metric_type,
           cast(messages_clicked as {{ dbt.type_float() }}) as x, cast(messages_delivered as {{ dbt.type_float() }}) as y,
           -- a ratio's CUPED covariate: the unit's clicks before exposure
           cast(pre_messages_clicked as {{ dbt.type_float() }}) as z
    from units
    union all
    select experiment_id, variant, unit_id, exposure_date, segment, region, carrier,
           'conversion_per_delivered', 'ratio',
           cast(messages_converted as {{ dbt.type_float() }}), cast(messages_delivered as {{ dbt.type_float() }}),
           cast(pre_conversions as {{ dbt.type_float() }})
    from units
    union all
    select experiment_id, variant, unit_id, exposure_date, segment, region, carrier,
           'clicked', 'proportion',
           cast(clicked as {{ dbt.type_float() }}), cast(case when pre_messages_clicked > 0 then 1 else 0 end as {{ dbt.type_float() }}), cast(0 as {{ dbt.type_float() }})
    from units
    union all
    select experiment_id, variant, unit_id, exposure_date, segment, region, carrier,
           'converted', 'proportion',
           cast(converted as {{ dbt.type_float() }}), cast(case when pre_conversions > 0 then 1 else 0 end as {{ dbt.type_float() }}), cast(0 as {{ dbt.type_float() }})
    from units
    union all
    select experiment_id, variant, unit_id, exposure_date, segment, region, carrier,
           'conversions', 'mean',
           cast(conversions as {{ dbt.type_float() }}), cast(pre_conversions as {{ dbt.type_float() }}), cast(0 as {{ dbt.type_float() }})
    from units
    union all
    select experiment_id, variant, unit_id, exposure_date, segment, region, carrier,
           'revenue', 'mean',
           cast(revenue as {{ dbt.type_float() }}), cast(pre_revenue as {{ dbt.type_float() }}), cast(0 as {{ dbt.type_float() }})
    from units
),

compact as (
    -- sums add: reduce units to one row per arm × day × segment × region × carrier first
    select
        experiment_id, variant, exposure_date, segment, region, carrier, metric, metric_type,
        count(*) as n,
        sum(x) as sum_x,
        sum(x * x) as sum_x2,
        sum(y) as sum_y,
        sum(y * y) as sum_y2,
        sum(x * y) as sum_xy,
        sum(z) as sum_z,
        sum(z * z) as sum_z2,
        sum(x * z) as sum_xz,
        sum(y * z) as sum_yz
    from metric_values
    group by 1, 2, 3, 4, 5, 6, 7, 8
),

dimension_values as (
    select experiment_id, variant, exposure_date, metric, metric_type, 'overall' as dimension, '(all)' as raw_value,
           n, sum_x, sum_x2, sum_y, sum_y2, sum_xy, sum_z, sum_z2, sum_xz, sum_yz
    from compact
    union all
    select experiment_id, variant, exposure_date, metric, metric_type, 'segment', segment,
           n, sum_x, sum_x2, sum_y, sum_y2, sum_xy, sum_z, sum_z2, sum_xz, sum_yz
    from compact
    union all
    select experiment_id, variant, exposure_date, metric, metric_type, 'region', region,
           n, sum_x, sum_x2, sum_y, sum_y2, sum_xy, sum_z, sum_z2, sum_xz, sum_yz
    from compact
    union all
    select experiment_id, variant, exposure_date, metric, metric_type, 'carrier', carrier,
           n, sum_x, sum_x2, sum_y, sum_y2, sum_xy, sum_z, sum_z2, sum_xz, sum_yz
    from compact
),

value_rank as (
    -- top values by units per experiment and dimension; the rest are pooled as "(other)"
    select
        experiment_id, dimension, raw_value,
        row_number() over (partition by experiment_id, dimension order by sum(n) desc, raw_value) as value_rank
    from dimension_values
    where metric = 'converted'
    group by experiment_id, dimension, raw_value
),

daily as (
    select
        d.experiment_id, d.variant, d.metric, d.metric_type, d.dimension,
        case when r.value_rank <= {{ var('dimension_top_values') }} then d.raw_value else '(other)' end as dimension_value,
        d.exposure_date as analysis_date,
        sum(d.n) as n,
        sum(d.sum_x) as sum_x,
        sum(d.sum_x2) as sum_x2,
        sum(d.sum_y) as sum_y,
        sum(d.sum_y2) as sum_y2,
        sum(d.sum_xy) as sum_xy,
        sum(d.sum_z) as sum_z,
        sum(d.sum_z2) as sum_z2,
        sum(d.sum_xz) as sum_xz,
        sum(d.sum_yz) as sum_yz
    from dimension_values as d
    inner join value_rank as r
        on d.experiment_id = r.experiment_id and d.dimension = r.dimension and d.raw_value = r.raw_value
    group by 1, 2, 3, 4, 5, 6, 7
),

cumulative as (
    select
        experiment_id, variant, metric, metric_type, dimension, dimension_value, analysis_date,
        sum(n) over w as n,
        sum(sum_x) over w as sum_x,
        sum(sum_x2) over w as sum_x2,
        sum(sum_y) over w as sum_y,
        sum(sum_y2) over w as sum_y2,
        sum(sum_xy) over w as sum_xy,
        sum(sum_z) over w as sum_z,
        sum(sum_z2) over w as sum_z2,
        sum(sum_xz) over w as sum_xz,
        sum(sum_yz) over w as sum_yz
    from daily
    window w as (
        partition by experiment_id, variant, metric, dimension, dimension_value
        order by analysis_date rows between unbounded preceding and current row
    )
),

final as (
    select 'daily' as scope, * from daily
    union all
    select 'cumulative' as scope, * from cumulative
)

select * from final
