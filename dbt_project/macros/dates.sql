{#-
    Engine-specific SQL (dates, the CTE inlining hint) lives here (dispatched, so another
    adapter can add its own `<adapter>__` implementation). Models call only these macros.
-#}

{#- One row per day from start_date to end_date inclusive, in a column named `date_day`.
    start_date / end_date are SQL expressions (scalar subqueries are fine). -#}
{% macro date_spine(start_date, end_date) -%}
    {{ return(adapter.dispatch('date_spine', 'crimecast')(start_date, end_date)) }}
{%- endmacro %}

{% macro duckdb__date_spine(start_date, end_date) -%}
    select cast(unnest(generate_series(
        cast({{ start_date }} as date), cast({{ end_date }} as date), interval 1 day
    )) as date) as date_day
{%- endmacro %}

{% macro default__date_spine(start_date, end_date) -%}
    {{ exceptions.raise_compiler_error(
        "date_spine has no implementation for adapter " ~ adapter.type()) }}
{%- endmacro %}

{#- Add a whole number of days to a date expression. -#}
{% macro add_days(date_expr, days) -%}
    {{ return(adapter.dispatch('add_days', 'crimecast')(date_expr, days)) }}
{%- endmacro %}

{% macro default__add_days(date_expr, days) -%}
    cast({{ date_expr }} + interval ({{ days }}) day as date)
{%- endmacro %}

{% macro duckdb__add_days(date_expr, days) -%}
    cast({{ date_expr }} + to_days(cast({{ days }} as integer)) as date)
{%- endmacro %}

{#- 1..366 -#}
{% macro day_of_year(date_expr) -%}
    {{ return(adapter.dispatch('day_of_year', 'crimecast')(date_expr)) }}
{%- endmacro %}

{% macro default__day_of_year(date_expr) -%}
    extract(doy from {{ date_expr }})
{%- endmacro %}

{% macro duckdb__day_of_year(date_expr) -%}
    dayofyear({{ date_expr }})
{%- endmacro %}

{#- 0 = Monday … 6 = Sunday (ISO day of week minus one). -#}
{% macro day_of_week_monday0(date_expr) -%}
    {{ return(adapter.dispatch('day_of_week_monday0', 'crimecast')(date_expr)) }}
{%- endmacro %}

{% macro default__day_of_week_monday0(date_expr) -%}
    (extract(isodow from {{ date_expr }}) - 1)
{%- endmacro %}

{% macro duckdb__day_of_week_monday0(date_expr) -%}
    (isodow({{ date_expr }}) - 1)
{%- endmacro %}

{#- Calendar date of a timestamp. -#}
{% macro to_date(timestamp_expr) -%}
    {{ return(adapter.dispatch('to_date', 'crimecast')(timestamp_expr)) }}
{%- endmacro %}

{% macro default__to_date(timestamp_expr) -%}
    cast({{ timestamp_expr }} as date)
{%- endmacro %}

{#- Written between `<cte name> as` and `(` for an import CTE that a model reads more than
    once: DuckDB materializes such a CTE (every column of every row, before any filter),
    which at 10 M incidents costs more than the whole rest of an incremental build.
    `not materialized` lets it inline the CTE, so each use scans only the columns and rows it
    needs. Engines without the hint get nothing. -#}
{% macro inline_cte() -%}
    {{ return(adapter.dispatch('inline_cte', 'crimecast')()) }}
{%- endmacro %}

{% macro default__inline_cte() -%}
{%- endmacro %}

{% macro duckdb__inline_cte() -%}
    not materialized
{%- endmacro %}
