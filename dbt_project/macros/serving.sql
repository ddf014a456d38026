{#-
    The serving contract (models/serving/, schema serving): the tables the dashboards, the API
    and the run summary read. Three rules, each written once here:

    serving_select(relation)  the model's columns as declared in its yml (names, types: the
        enforced contract), read from `relation`. A column may be found under another name
        (column meta `from: [forecast_lo_80]`); an optional one missing from the relation is a
        typed NULL; a relation that does not exist (its pipeline step has not run, e.g. France
        not configured) or lacks a column with meta `required: true` gives no rows, so that a
        reader says "not available yet" instead of failing (models/serving/availability.sql).
    latest_run(relation, partition_by)  the rows of the latest run (largest run_id, sortable
        by time) per source, or over the whole table with partition_by=[]: the "latest run per
        source" rule of every `*_latest` model.
    min_cell_records()  k of the small-cell rule (docs/saopaulo.md): published rows built from
        fewer than k records are withheld. ml/placetype.py's PlaceTypeConfig.min_cell_records
        and serving/publish.py's MIN_CELL_RECORDS (its guard on the ml.* copies) are the same k.
-#}

{% macro serving_select(relation) -%}
    {%- set columns = model.columns.values() | list -%}
    {%- set ns = namespace(found=none, have={}) -%}
    {%- if execute -%}
        {%- set ns.found = load_relation(relation) -%}
    {%- endif -%}
    {%- if ns.found is not none -%}
        {%- for col in adapter.get_columns_in_relation(ns.found) -%}
            {%- do ns.have.update({col.name | lower: col.name}) -%}
        {%- endfor -%}
        {%- for col in columns -%}
            {%- if col.meta.get('required') and serving_column(col, ns.have) is none -%}
                {{ log('serving.' ~ model.name ~ ': ' ~ relation ~ ' has no column ' ~ col.name
                    ~ ' (required): no rows published', info=true) }}
                {%- set ns.found = none -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    select
    {%- for col in columns %}
        {% set name = serving_column(col, ns.have) if ns.found is not none else none -%}
        {%- if name is not none -%}
            {{ crimecast.try_cast(adapter.quote(name), col.data_type) }}
        {%- else -%}
            cast(null as {{ col.data_type }})
        {%- endif %} as {{ adapter.quote(col.name) }}{{ "," if not loop.last }}
    {%- endfor %}
    {%- if ns.found is not none or not execute %}
    from {{ relation }}
    {%- else %}
    where 1 = 0
    {%- endif %}
{%- endmacro %}

{#- the relation's name for a declared column: itself, else its `from` names, else none -#}
{% macro serving_column(col, have) -%}
    {%- set ns = namespace(name=none) -%}
    {%- for candidate in [col.name] + col.meta.get('from', []) -%}
        {%- if ns.name is none and (candidate | lower) in have -%}
            {%- set ns.name = have[candidate | lower] -%}
        {%- endif -%}
    {%- endfor -%}
    {{- return(ns.name) -}}
{%- endmacro %}

{% macro latest_run(relation, partition_by=['source']) -%}
    select t.*
    from {{ relation }} as t
    inner join (
        select
            {%- for col in partition_by %}
            {{ col }},
            {%- endfor %}
            max(run_id) as latest_run_id
        from {{ relation }}
        {%- if partition_by %}
        group by {{ partition_by | join(', ') }}
        {%- endif %}
    ) as l
        on
        {%- for col in partition_by %}
        l.{{ col }} = t.{{ col }} and
        {%- endfor %}
        l.latest_run_id = t.run_id
{%- endmacro %}

{% macro min_cell_records() -%}
    {{- return(var('min_cell_records', 5)) -}}
{%- endmacro %}
