{#- Every row satisfies the SQL boolean `expression` (model- or column-level; the column is
    not used, the expression names what it needs). -#}
{% test expression_is_true(model, expression, column_name=none) %}

select *
from {{ model }}
where not coalesce(({{ expression }}), false)

{% endtest %}
