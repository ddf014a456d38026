-- Which serving tables hold what the pipeline produced (present) and which are empty
-- fallbacks because their origin does not exist yet (e.g. France not configured), so that a page
-- can say "not available yet". One row per serving model; a `*_latest` model is present when
-- its base model is. row_count: rows in the warehouse (serving/publish.py sets those of the copy).
{%- set names = [
    'source_files', 'saopaulo_source_files', 'sources', 'data_quality', 'daily_counts',
    'forecasts', 'forecasts_latest', 'forecasts_hierarchy', 'forecasts_hierarchy_latest',
    'backtest_metrics', 'backtest_metrics_latest', 'backtest_predictions',
    'backtest_predictions_latest', 'interval_coverage', 'interval_coverage_latest',
    'leaderboard', 'leaderboard_latest', 'explanations', 'explanations_latest', 'anomalies',
    'anomalies_latest', 'source_status', 'source_status_latest', 'france_annual_rates',
    'france_forecasts', 'france_forecasts_latest', 'france_backtest_metrics',
    'france_backtest_metrics_latest', 'saopaulo_place_probabilities',
    'saopaulo_place_probabilities_latest', 'saopaulo_metrics', 'saopaulo_metrics_latest'
] %}
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
    select
        cast('{{ name }}' as varchar) as name,
        {{ 'true' if found is not none else 'false' }} as present,
        cast({{ "'" ~ origin ~ "'" if found is not none else 'null' }} as varchar) as origin,
        (select count(*) from {{ ref('serving__' ~ name) }}) as row_count,
        {%- set description = graph.nodes['model.crimecast.serving__' ~ name].description
            if execute else '' %}
        cast('{{ description | replace("'", "''") }}' as varchar) as description
    {%- if not loop.last %}
    union all
    {%- endif %}
{%- endfor %}
