{#-
    Helpers for the series selection vars (see dbt_project.yml):
      series_preset  'all' | 'top5x5'
      areas, categories  optional lists; empty or unset = no filter
    A list may also be given as a comma-separated string on the command line:
      dbt build --vars '{areas: "B2,D4", categories: [Larceny]}'
-#}
{% macro series_var_list(name) -%}
    {%- set value = var(name, []) -%}
    {%- if value is none -%}
        {%- set value = [] -%}
    {%- elif value is string -%}
        {%- set value = value.split(',') | map('trim') | reject('equalto', '') | list -%}
    {%- endif -%}
    {{ return(value | list) }}
{%- endmacro %}

{% macro series_preset() -%}
    {%- set preset = (var('series_preset', 'all') or 'all') | string | trim | lower -%}
    {%- if preset not in ['all', 'top5x5'] -%}
        {{ exceptions.raise_compiler_error(
            "series_preset (CRIMECAST_SERIES_PRESET) must be 'all' or 'top5x5', got '"
            ~ preset ~ "'") }}
    {%- endif -%}
    {{ return(preset) }}
{%- endmacro %}

{#- SQL list literal: ('a', 'b'), quotes escaped as the engine wants (dbt-core's macros). -#}
{% macro sql_string_list(values) -%}
    ({%- for v in values -%}
        {{ dbt.string_literal(dbt.escape_single_quotes(v | string)) }}{{ ", " if not loop.last }}
    {%- endfor -%})
{%- endmacro %}
