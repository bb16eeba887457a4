{#- Dialect differences, each behind adapter.dispatch (duckdb and spark beside the default). -#}

{#- A UTC timestamp as wall-clock time in the IANA zone held by tz_column. -#}
{% macro to_local_time(ts, tz_column) -%}
    {{ return(adapter.dispatch('to_local_time', 'nudgelab')(ts, tz_column)) }}
{%- endmacro %}
{% macro default__to_local_time(ts, tz_column) -%}
    ({{ ts }} at time zone {{ tz_column }})
{%- endmacro %}
{% macro duckdb__to_local_time(ts, tz_column) -%}
    timezone(coalesce({{ tz_column }}, 'UTC'), {{ ts }})
{%- endmacro %}
{% macro spark__to_local_time(ts, tz_column) -%}
    from_utc_timestamp({{ ts }}, coalesce({{ tz_column }}, 'UTC'))
{%- endmacro %}

{#- ISO day of week: Monday = 1 … Sunday = 7. -#}
{% macro iso_day_of_week(ts) -%}
    {{ return(adapter.dispatch('iso_day_of_week', 'nudgelab')(ts)) }}
{%- endmacro %}
{% macro default__iso_day_of_week(ts) -%}
    cast(extract(isodow from {{ ts }}) as integer)
{%- endmacro %}
{% macro spark__iso_day_of_week(ts) -%}
    (((dayofweek({{ ts }}) + 5) % 7) + 1)
{%- endmacro %}

{% macro hour_of_day(ts) -%}
    {{ return(adapter.dispatch('hour_of_day', 'nudgelab')(ts)) }}
{%- endmacro %}
{% macro default__hour_of_day(ts) -%}
    cast(extract(hour from {{ ts }}) as integer)
{%- endmacro %}
{% macro spark__hour_of_day(ts) -%}
    hour({{ ts }})
{%- endmacro %}

{#- Seconds between two timestamps as a fraction (dbt.datediff counts whole boundaries). -#}
{% macro seconds_between(start_ts, end_ts) -%}
    {{ return(adapter.dispatch('seconds_between', 'nudgelab')(start_ts, end_ts)) }}
{%- endmacro %}
{% macro default__seconds_between(start_ts, end_ts) -%}
    (extract(epoch from {{ end_ts }}) - extract(epoch from {{ start_ts }}))
{%- endmacro %}
{% macro spark__seconds_between(start_ts, end_ts) -%}
    (cast(unix_micros({{ end_ts }}) - unix_micros({{ start_ts }}) as double) / 1e6)
{%- endmacro %}

{#- Every hour from start_at to end_at of each row of `relation`, as hour_at, beside the row's
    `carry` columns (a per-row spine: each slice gets its own span). -#}
{% macro hour_spine(relation, carry=[]) -%}
    {{ return(adapter.dispatch('hour_spine', 'nudgelab')(relation, carry)) }}
{%- endmacro %}
{% macro default__hour_spine(relation, carry) -%}
    select {% for column in carry %}{{ column }}, {% endfor %}unnest(generate_series(start_at, end_at, interval 1 hour)) as hour_at
    from {{ relation }}
{%- endmacro %}
{% macro spark__hour_spine(relation, carry) -%}
    select {% for column in carry %}{{ column }}, {% endfor %}explode(sequence(start_at, end_at, interval 1 hour)) as hour_at
    from {{ relation }}
{%- endmacro %}

{#- The value from the row with the greatest key tuple in a group (an aggregate). Unlike a ranking
    window, an aggregate lets a filter on the group key reach the table scan. -#}
{% macro value_at_max(value, keys) -%}
    {{ return(adapter.dispatch('value_at_max', 'nudgelab')(value, keys)) }}
{%- endmacro %}
{% macro default__value_at_max(value, keys) -%}
    arg_max({{ value }}, row({{ keys | join(', ') }}))
{%- endmacro %}
{% macro spark__value_at_max(value, keys) -%}
    max_by({{ value }}, struct({{ keys | join(', ') }}))
{%- endmacro %}
{% macro duckdb__value_at_max(value, keys) -%}
    {#- arg_max skips rows whose value is null; the row with the greatest key decides, null or not -#}
    arg_max_null({{ value }}, row({{ keys | join(', ') }}))
{%- endmacro %}
