{#-
    The rebuild window of the incremental models (docs/decisions.md, "Incremental builds").

    The loader records, per source and load, the earliest day whose raw rows changed
    (raw.load_log, ingest/loader.py). A build rebuilds, per source, the days from the earliest
    such day of the loads not marked built yet (the Dagster dbt asset marks them after a
    complete build). dbt reads that window from raw.load_log when the build runs; the var
    overrides it (by hand, or a caller that keeps its own bookkeeping):

        dbt build --vars '{rebuild_from: {houston: "2025-01-01"}}'

    Read in dbt rather than always passed as a var: any change of --vars makes dbt re-parse
    the whole project (its state check hashes the CLI vars), several seconds of a daily
    build. A source missing from the window has no changed row: its models only add the days
    after their last day. Without raw.load_log every day of every source is rebuilt: slower,
    never wrong. The models rebuild whole days (source, day) with the adapter's own strategy
    (rebuild_window_config): delete+insert on DuckDB; on Spark they are tables rebuilt whole
    (spark__rebuild_window_config says why).
-#}

{#- The window as {source: 'YYYY-MM-DD'}, or none: rebuild everything (a full refresh, or no
    raw.load_log). A bad var fails the build with one line naming it. -#}
{% macro rebuild_window() -%}
    {%- if flags.FULL_REFRESH -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set window = var('rebuild_from', none) -%}
    {%- if window is none -%}
        {{ return(pending_window()) }}
    {%- endif -%}
    {%- if window is not mapping -%}
        {{ exceptions.raise_compiler_error(
            "var rebuild_from must be a map {source: 'YYYY-MM-DD'}, got " ~ window) }}
    {%- endif -%}
    {%- for source, day in window.items() -%}
        {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', day | string) -%}
            {{ exceptions.raise_compiler_error(
                "var rebuild_from: source " ~ source ~ ": not a date (YYYY-MM-DD): " ~ day) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(window) }}
{%- endmacro %}

{#- The loads not built yet, from raw.load_log, when the build runs (at parse time: none). -#}
{% macro pending_window() -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set log = adapter.get_relation(database=target.database, schema='raw',
        identifier='load_log') -%}
    {%- if log is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set rows = run_query(
        "select source, cast(min(rebuild_from) as " ~ dbt.type_string() ~ ") from " ~ log
        ~ " where built_at is null and rebuild_from is not null group by source") -%}
    {%- set window = {} -%}
    {%- for row in rows -%}
        {%- do window.update({row[0]: row[1]}) -%}
    {%- endfor -%}
    {{ return(window) }}
{%- endmacro %}

{% macro sql_string(value) -%}
    '{{ value | string | replace("'", "''") }}'
{%- endmacro %}

{#- The window's day of `source_expr` (a date), NULL for a source without changes. -#}
{% macro window_day(source_expr) -%}
    {%- set window = rebuild_window() or {} -%}
    {%- if window -%}
    case {{ source_expr }}
        {%- for source, day in window.items() | sort %}
        when {{ sql_string(source) }} then cast({{ sql_string(day) }} as date)
        {%- endfor %}
    end
    {%- else -%}
    cast(null as date)
    {%- endif -%}
{%- endmacro %}

{#- True for the rows of the window: sources with changes, days from their window day on (and
    rows without a day). Everything without a window. -#}
{% macro in_rebuild_window(source_expr, date_expr) -%}
    {%- set window = rebuild_window() -%}
    {%- if window is none -%}
    true
    {%- elif not window -%}
    false
    {%- else -%}
    (
        {{ source_expr }} in (
            {%- for source in window | sort %}{{ sql_string(source) }}{{ ", " if not loop.last }}
            {%- endfor %})
        and ({{ date_expr }} is null or {{ date_expr }} >= {{ window_day(source_expr) }})
    )
    {%- endif -%}
{%- endmacro %}

{#- The incremental config of a model rebuilt by whole (source, day): the strategy each
    adapter has. `keys` are the source and day columns. delete_window: on DuckDB, delete the
    window's rows (rows without a day included) instead of the (source, day) pairs of the new
    rows: for staging, whose day may be NULL and whose removed rows leave no new row behind.
    Configs are rendered when the project is parsed, so the predicate reads the window in SQL
    (window_delete_predicate). -#}
{% macro rebuild_window_config(keys, delete_window=false) -%}
    {{ return(adapter.dispatch('rebuild_window_config', 'crimecast')(keys, delete_window)) }}
{%- endmacro %}

{% macro default__rebuild_window_config(keys, delete_window) -%}
    {%- if delete_window -%}
        {#- unique_key as one column: dbt's delete compares `(source) in (select source from
            the new rows)`, so the predicate's bare columns are the table's -#}
        {{ return({
            'materialized': 'incremental',
            'incremental_strategy': 'delete+insert',
            'unique_key': keys[0],
            'incremental_predicates': [window_delete_predicate(keys[0], keys[1])],
        }) }}
    {%- endif -%}
    {{ return({'materialized': 'incremental', 'incremental_strategy': 'delete+insert',
        'unique_key': keys}) }}
{%- endmacro %}

{#- The table's rows in the window, as SQL evaluated when the delete runs: from the var if
    given, else from raw.load_log (every row of the new rows' sources without it, or with a
    full refresh). -#}
{% macro window_delete_predicate(source_column, date_column) -%}
    {%- set window = var('rebuild_from', none) -%}
    {%- if flags.FULL_REFRESH -%}
    true
    {%- elif window is not none -%}
    {{ in_rebuild_window(source_column, date_column) }}
    {%- else -%}
    coalesce({{ date_column }}, cast('9999-12-31' as date)) >= coalesce(
        (
            select min(l.rebuild_from)
            from raw.load_log as l
            where l.built_at is null and l.source = {{ this.identifier }}.{{ source_column }}
        ),
        cast('0001-01-01' as date)
    )
    {%- endif -%}
{%- endmacro %}

{#- Spark: a table, rebuilt whole. Without Delta or Iceberg (neither installs here: no jar
    from Maven) Spark tables are plain Parquet, with no DELETE or MERGE; insert_overwrite of
    (source, day) partitions cannot remove a partition that has no new row (the window's rows
    of int_incidents__checked without a day, a day that leaves a source's range), writes one
    folder per source and day (thousands of small files), and the models read {{ this }}
    while it is overwritten. docs/scale-out.md, "Incremental models". -#}
{% macro spark__rebuild_window_config(keys, delete_window) -%}
    {{ return({'materialized': 'table'}) }}
{%- endmacro %}

{#- The body of an incremental model's `rebuild` CTE: per source of the CTE `days` (source,
    first_day), from_day, the first day rebuilt. Incremental: the source's first day when the
    table (CTE `built`: source, first_day, last_day) has no row of it, its first day moved,
    the source is in the CTE `changes` (its series changed) or there is no window; else the
    earlier of the window's day and the day after the table's last day. Otherwise (first or
    full build, or a table on Spark): the source's first day. -#}
{% macro rebuild_from_days(days, changes) -%}
    {%- if is_incremental() %}
    select
        {{ days }}.source,
        case
            when
                built.source is null
                or built.first_day != {{ days }}.first_day
                or {{ changes }}.source is not null
                {%- if rebuild_window() is none %}
                or true
                {%- endif %}
                then {{ days }}.first_day
            else least(
                coalesce({{ window_day(days ~ '.source') }}, {{ add_days('built.last_day', 1) }}),
                {{ add_days('built.last_day', 1) }}
            )
        end as from_day
    from {{ days }}
    left join built
        on {{ days }}.source = built.source
    left join {{ changes }}
        on {{ days }}.source = {{ changes }}.source
    {%- else %}
    select
        source,
        first_day as from_day
    from {{ days }}
    {%- endif %}
{%- endmacro %}

{#- For the tests of an incremental model in a `dbt build`: the first day they check, one day
    before the window's earliest (the day a new day makes full), or 0001-01-01 (every row)
    without a window or with an empty one, after a full refresh or in another command
    (`dbt test`). Rows of days before were checked when they were written and are unchanged;
    rows a model rewrote before that day (a source whose series changed is rebuilt from its
    first day) are checked by the next `dbt test` or full refresh. -#}
{% macro rebuilt_from(model_name=none) -%}
    {%- set window = rebuild_window() -%}
    {%- if flags.WHICH != 'build' or not window -%}
    cast('0001-01-01' as date)
    {%- else -%}
    {{ add_days('cast(' ~ sql_string(window.values() | map('string') | min) ~ ' as date)', -1) }}
    {%- endif -%}
{%- endmacro %}

{% macro rebuilt_days(model_name, date_column='date') -%}
    ({{ date_column }} is null or {{ date_column }} >= {{ rebuilt_from(model_name) }})
{%- endmacro %}

{#- For tests of raw.incidents in a `dbt build`: the rows of the window (every row without
    one, with --full-refresh or in another command). -#}
{% macro new_raw_files() -%}
    {%- if flags.WHICH == 'build' and rebuild_window() is not none -%}
    {{ in_rebuild_window('source', to_date('occurred_at')) }}
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}

{#- dbt's where config is rendered when the project is parsed, before `ref` resolves in a
    yml file: `__rebuilt_days__` becomes rebuilt_days() of the tested model,
    `__new_raw_files__` new_raw_files(), when the test runs. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- if '__rebuilt_days__' in where -%}
            {%- set where = where | replace('__rebuilt_days__', rebuilt_days(relation.identifier)) -%}
        {%- endif -%}
        {%- if '__new_raw_files__' in where -%}
            {%- set where = where | replace('__new_raw_files__', new_raw_files()) -%}
        {%- endif -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{#- True when a duplicate key the source uses is NULL in `row`: such a row is never a
    duplicate (stg_police__incidents). -#}
{% macro stg_police__incidents_key_missing(row, policies) -%}
    (
        {%- for field, column in [
            ('incident_id', 'incident_id'), ('area', 'area'), ('offense_code', 'offense_code'),
            ('offense_description', 'offense_description'), ('count', 'incident_count'),
            ('timestamp', 'occurred_at')] %}
        ({{ policies }}.key_{{ field }} and {{ row }}.{{ column }} is null)
        {{- " or" if not loop.last }}
        {%- endfor %}
    )
{%- endmacro %}

{#- The area and category codes of the selected series: dense ranks per source. -#}
{% macro series_codes() -%}
    select
        source,
        series_id,
        cast(dense_rank() over (partition by source order by area) as integer) as area_code,
        cast(dense_rank() over (partition by source order by category) as integer)
            as category_code
    from {{ ref('int_incidents__series') }}
{%- endmacro %}
