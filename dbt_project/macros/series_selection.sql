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

{#-
    The cutoff(s) series selection must not look past (int_incidents__series): var selection_cutoff, else
    env var CRIMECAST_CUTOFF — empty, one date for every source, or source=date,… (the forms the
    ML step reads, orchestration/config.py). Returns {'all': date or '', 'per_source': {..}}.
-#}
{% macro selection_cutoffs() -%}
    {%- set text = (var('selection_cutoff', env_var('CRIMECAST_CUTOFF', '')) or '') | string -%}
    {%- set out = namespace(all='', per_source={}) -%}
    {%- for item in text.split(',') -%}
        {%- set item = item | trim -%}
        {%- if '=' in item -%}
            {%- set parts = item.split('=', 1) -%}
            {%- do out.per_source.update({parts[0] | trim | lower: parts[1] | trim}) -%}
        {%- elif item -%}
            {%- set out.all = item -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return({'all': out.all, 'per_source': out.per_source}) }}
{%- endmacro %}

{#- Per-source selection cutoff: the asked one when it is earlier than the default, else the
    default (an SQL date expression over the row's `source`). -#}
{% macro selection_cutoff_sql(asked, default) -%}
    {%- if not (asked.per_source or asked.all) -%}
        {{ default }}
    {%- else -%}
        case
        {%- for name, day in asked.per_source.items() %}
            when source = {{ dbt.string_literal(name) }}
                and cast({{ dbt.string_literal(day) }} as date) < {{ default }}
                then cast({{ dbt.string_literal(day) }} as date)
        {%- endfor %}
        {%- if asked.all %}
            when cast({{ dbt.string_literal(asked.all) }} as date) < {{ default }}
                then cast({{ dbt.string_literal(asked.all) }} as date)
        {%- endif %}
            else {{ default }}
        end
    {%- endif -%}
{%- endmacro %}
