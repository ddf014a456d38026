{#-
    The serving contract (models/serving/, schema serving): the tables the dashboards, the API
    and the run summary read. Its rules, each written once here:

    serving_select(relation)  the model's columns as declared in its yml (names, types: the
        enforced contract), read from `relation`. A column may be found under another name
        (column meta `from: [forecast_lo_80]`); an optional one missing from the relation is a
        typed NULL; a relation that does not exist (its pipeline step has not run, e.g. France
        not configured) or lacks a column with meta `required: true` gives no rows, so that a
        reader says "not available yet" instead of failing (serving.availability).
    latest_run(relation, partition_by)  the rows of the latest run (largest run_id, sortable
        by time) per source, or over the whole table with partition_by=[]: the "latest run per
        source" rule of every `*_latest` model.
    serving_availability()  the rows of serving.availability: which serving tables have an
        origin (present) and how many rows they hold (its list names every serving model but
        itself: tests/test_serving_contract.py checks it).
    min_cell_records()  k of the small-cell rule (docs/saopaulo.md): published rows built from
        fewer than k records are withheld. The var `min_cell_records` of dbt_project.yml, which
        Python reads too (orchestration.config.MIN_CELL_RECORDS: serving/publish.py's guard on
        the ml.* copies, the São Paulo model's default in orchestration/defs/saopaulo).
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
            {{ crimecast.try_cast(adapter.quote(name), engine_type(col.data_type)) }}
        {%- else -%}
            cast(null as {{ engine_type(col.data_type) }})
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
    {{- return(var('min_cell_records')) -}}
{%- endmacro %}

{#- serving.availability (models/serving/serving__availability.sql): one row per serving model;
    a `*_latest` model is present when its base model's origin (meta.origin) exists. -#}
{% macro serving_availability() -%}
{%- set names = [
    'source_files', 'saopaulo_source_files', 'sources', 'data_quality', 'area_locations',
    'area_map',
    'daily_counts',
    'forecasts', 'forecasts_latest', 'forecasts_hierarchy', 'forecasts_hierarchy_latest',
    'backtest_metrics', 'backtest_metrics_latest', 'backtest_predictions',
    'backtest_predictions_latest', 'interval_coverage', 'interval_coverage_latest',
    'leaderboard', 'leaderboard_latest', 'explanations', 'explanations_latest', 'anomalies',
    'anomalies_latest', 'source_status', 'source_status_latest', 'france_annual_rates',
    'france_forecasts', 'france_forecasts_latest', 'france_backtest_metrics',
    'france_backtest_metrics_latest', 'saopaulo_place_probabilities',
    'saopaulo_place_probabilities_latest', 'saopaulo_metrics', 'saopaulo_metrics_latest',
    'overview', 'saopaulo_place_probabilities_labelled', 'series_labels',
    'forecast_bands', 'backtest_predictions_last_cutoff',
    'explanations_labelled', 'model_labels', 'interval_coverage_pooled',
    'anomaly_bands'
] %}
{%- set rows = [] %}
{%- for name in names %}
    {%- set base = name[:-7] if name.endswith('_latest') else name %}
    {%- set node = graph.nodes.get('model.crimecast.serving__' ~ base) if execute else none %}
    {%- set origin = node.meta.get('origin') if node else none %}
    {%- set found = none %}
    {%- if origin %}
        {%- set schema, table = origin.split('.') %}
        {%- set found = adapter.get_relation(
            database=target.database, schema=schema, identifier=table
        ) %}
    {%- endif %}
    {%- set description = graph.nodes['model.crimecast.serving__' ~ name].description
        if execute else '' %}
    {%- do rows.append({
        'name': name,
        'present': 'true' if found is not none else 'false',
        'origin': "'" ~ origin ~ "'" if found is not none else 'null',
        'description': description,
    }) %}
{%- endfor %}

{#- the description written by dbt's escaping: Spark reads '' inside a literal as two
    adjacent literals (the quote lost), DuckDB as a quote -#}
{% for row in rows -%}
select
    cast('{{ row.name }}' as {{ engine_type('varchar') }}) as name,
    {{ row.present }} as present,
    cast({{ row.origin }} as {{ engine_type('varchar') }}) as origin,
    (select count(*) from {{ ref('serving__' ~ row.name) }}) as row_count,
    cast({{ dbt.string_literal(dbt.escape_single_quotes(row.description)) }}
        as {{ engine_type('varchar') }}) as description
{% if not loop.last %}union all
{% endif %}
{%- endfor %}
{%- endmacro %}
