{#-
    The cleaning policies of each source mapping (sources/README.md, "Cleaning policies"), as
    the loader writes them into raw.sources: one row per source, defaults filled in (a
    warehouse loaded before a policy existed has NULL there).
      dedupe            'default' (the built-in duplicate rule), 'off' or 'keys'
      key_<field>       with dedupe = 'keys': whether the field is one of the keys
      orphan_reversals  'drop' or 'net'
      last_day          'partial', 'complete' or 'auto'
      latitude_min/max, longitude_min/max  the plausible coordinates (default: the globe)
-#}

{%- macro dedupe_key_fields() -%}
    {{ return(['incident_id', 'area', 'category', 'offense_code', 'offense_description',
               'count', 'timestamp']) }}
{%- endmacro %}

{% macro source_policies() -%}
    select
        source,
        coalesce(dedupe, 'default') as dedupe,
        {%- for key in dedupe_key_fields() %}
        coalesce(dedupe = 'keys' and ',' || dedupe_keys || ',' like '%,{{ key }},%', false)
            as key_{{ key }},
        {%- endfor %}
        coalesce(orphan_reversals, 'drop') as orphan_reversals,
        coalesce(last_day, 'partial') as last_day,
        coalesce(latitude_min, -90.0) as latitude_min,
        coalesce(latitude_max, 90.0) as latitude_max,
        coalesce(longitude_min, -180.0) as longitude_min,
        coalesce(longitude_max, 180.0) as longitude_max
    from {{ source('raw', 'sources') }}
{%- endmacro %}

{#- Median of a numeric expression (an aggregate). -#}
{% macro median(expr) -%}
    {{ return(adapter.dispatch('median', 'crimecast')(expr)) }}
{%- endmacro %}

{% macro default__median(expr) -%}
    percentile_cont(0.5) within group (order by {{ expr }})
{%- endmacro %}

{% macro duckdb__median(expr) -%}
    median({{ expr }})
{%- endmacro %}
