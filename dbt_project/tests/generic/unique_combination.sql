{#- The combination of `columns` is unique (dbt_utils.unique_combination_of_columns, written here
    because hub packages are not used). -#}
{% test unique_combination(model, columns, column_name=none) %}

select
    {{ columns | join(', ') }},
    count(*) as n_rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1

{% endtest %}
