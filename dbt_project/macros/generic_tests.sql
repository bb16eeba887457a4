{#- Our own generic data tests (dbt's hub, and so dbt_utils, is out of reach). -#}

{#- No two rows share the same values of combination_of_columns (a composite key). Nulls count as a
    value, so two rows that differ only by a null are still a duplicate. -#}
{% test unique_combination(model, combination_of_columns) %}
    {%- set columns = combination_of_columns | join(', ') %}
    select {{ columns }}, count(*) as duplicate_rows
    from {{ model }}
    group by {{ columns }}
    having count(*) > 1
{% endtest %}

{#- Every row satisfies a boolean SQL expression (a row where it is null passes: pair with not_null). -#}
{% test expression_is_true(model, expression, column_name=none) %}
    select *
    from {{ model }}
    where not ({{ expression }})
{% endtest %}
