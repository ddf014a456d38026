{#-
    Every selected series (int_incidents__series) × every day from its source's first day to the source's
    last full day (int_incidents__source_days: the last day with data minus one, as extracts are cut
    mid-day, unless the mapping's `last_day` policy says the last day is complete), zero-filled.
    incident_count sums incident_count (so -1 reversals are netted); for a source with
    `orphan_reversals: net` a series-day that would be negative is clamped at 0 (counted in
    incidents_data_quality); n_records counts the kept incident records (a reversal is a
    record); is_filled is true where there was none.

    Incremental by rebuild window (macros/incremental_window.sql): per source, every day from
    `from_day` on is rebuilt and replaces the same (source, day) of the table (delete+insert
    on DuckDB; on Spark a table rebuilt whole). from_day is the
    source's first day when the table has no row of it, its first day moved or its set of
    series changed (so every day of it is replaced); otherwise the earlier of the window's
    day (var rebuild_from, from the loader) and the day after the table's last day, whose
    last day moves on. Only the incidents from the earliest from_day on are read. A day that
    leaves a source's range (a removed file, see raw.load_log.full_refresh) needs
    `dbt build --full-refresh`. The result equals a full refresh
    (tests/test_reliability_incremental.py).
-#}

{{ config(
    on_schema_change='fail',
    **rebuild_window_config(['source', 'date'])
) }}

with

incidents as {{ inline_cte() }} (

    select * from {{ ref('int_incidents__kept') }}

),

series as (

    select * from {{ ref('int_incidents__series') }}

),

source_days as (

    select * from {{ ref('int_incidents__source_days') }}

),

{% if is_incremental() -%}

built as (

    select
        source,
        min(date) as first_day,
        max(date) as last_day
    from {{ this }}
    group by source

),

-- every series of a source covers the source's whole range: its last day has them all
built_series as (

    select distinct
        t.source,
        t.series_id
    from {{ this }} as t
    inner join built
        on
            t.source = built.source
            and t.date = built.last_day

),

series_changes as (

    select distinct source
    from (
        (
            select source, series_id from series
            except
            select source, series_id from built_series
        )
        union all
        (
            select source, series_id from built_series
            except
            select source, series_id from series
        )
    ) as changed

),

{%- endif %}

-- per source, the first day rebuilt (macros/incremental_window.sql)
rebuild as (

    {{ rebuild_from_days('source_days', 'series_changes') }}

),

-- only the days being rebuilt are aggregated
daily as (

    select
        source,
        area,
        category,
        occurred_date as date,
        sum(incident_count) as incident_count,
        count(*) as n_records
    from incidents
    where occurred_date >= (select min(rebuild.from_day) from rebuild)
    group by source, area, category, occurred_date

),

spine as (

    {{ date_spine(
        '(select min(from_day) from rebuild)',
        '(select max(last_full_day) from source_days)'
    ) }}

),

series_days as (

    select
        series.source,
        series.series_id,
        series.area,
        series.category,
        spine.date_day as date
    from series
    inner join source_days
        on series.source = source_days.source
    inner join rebuild
        on series.source = rebuild.source
    inner join spine
        on
            spine.date_day between source_days.first_day and source_days.last_full_day
            and rebuild.from_day <= spine.date_day

),

final as (

    select
        series_days.source,
        series_days.series_id,
        series_days.area,
        series_days.category,
        series_days.date,
        cast(
            case
                when source_days.orphan_reversals = 'net' and daily.incident_count < 0 then 0
                else coalesce(daily.incident_count, 0)
            end as integer
        ) as incident_count,
        cast(coalesce(daily.n_records, 0) as integer) as n_records,
        daily.date is null as is_filled
    from series_days
    inner join source_days
        on series_days.source = source_days.source
    left join daily
        on
            series_days.source = daily.source
            and series_days.area = daily.area
            and series_days.category = daily.category
            and series_days.date = daily.date

)

select * from final
