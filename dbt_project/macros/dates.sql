{#-
    Date SQL on dbt-core's cross-database macros (dbt.dateadd, dbt.datediff, and through
    integer_spine dbt.generate_series, which dbt-duckdb runs as DuckDB's generate_series).
    A `spark__` variant exists only where dbt-core's macro gives a wrong or no result there
    (issue 16; tests/test_spark.py); DuckDB runs the defaults. Other engine-specific SQL:
    macros/cross_database.sql.
-#}

{#- One row per day from start_date to end_date inclusive, in a column named `date_day`.
    start_date / end_date are SQL expressions (scalar subqueries over the model's CTEs are
    fine). dbt.date_spine is not used in models: it counts the days with a query when the SQL
    is compiled, which cannot read bounds computed in the model (its CTEs, a rebuild window);
    tests/assert_engine_macros_agree.sql holds this spine to dbt.date_spine on fixed bounds.
    At most 65,536 days (179 years; integer_spine). -#}
{% macro date_spine(start_date, end_date) -%}
    {%- set first_day = 'cast(' ~ start_date ~ ' as date)' -%}
    select cast({{ dbt.dateadd('day', 'day_offsets.day_offset', first_day) }} as date) as date_day
    from (
        {{ integer_spine('0', dbt.datediff(first_day, 'cast(' ~ end_date ~ ' as date)', 'day'),
            'day_offset') }}
    ) as day_offsets
{%- endmacro %}

{#- Add a whole number of days to a date expression. -#}
{% macro add_days(date_expr, days) -%}
    {{ return(adapter.dispatch('add_days', 'crimecast')(date_expr, days)) }}
{%- endmacro %}

{% macro default__add_days(date_expr, days) -%}
    cast({{ dbt.dateadd('day', days, date_expr) }} as date)
{%- endmacro %}

{#- dbt-spark's dateadd goes through timestamps; date_add(date, int) is a date. -#}
{% macro spark__add_days(date_expr, days) -%}
    date_add({{ date_expr }}, cast({{ days }} as int))
{%- endmacro %}

{#- 1..366 -#}
{% macro day_of_year(date_expr) -%}
    {{ return(adapter.dispatch('day_of_year', 'crimecast')(date_expr)) }}
{%- endmacro %}

{% macro default__day_of_year(date_expr) -%}
    extract(doy from {{ date_expr }})
{%- endmacro %}

{% macro spark__day_of_year(date_expr) -%}
    dayofyear({{ date_expr }})
{%- endmacro %}

{#- 0 = Monday … 6 = Sunday (ISO day of week minus one). -#}
{% macro day_of_week_monday0(date_expr) -%}
    {{ return(adapter.dispatch('day_of_week_monday0', 'crimecast')(date_expr)) }}
{%- endmacro %}

{% macro default__day_of_week_monday0(date_expr) -%}
    (extract(isodow from {{ date_expr }}) - 1)
{%- endmacro %}

{#- Spark has no isodow; weekday() is 0 = Monday … 6 = Sunday. -#}
{% macro spark__day_of_week_monday0(date_expr) -%}
    weekday({{ date_expr }})
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
