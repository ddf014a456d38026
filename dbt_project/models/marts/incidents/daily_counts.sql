{#-
    Every selected series (int_incidents__series) × every day from its source's first day to the source's
    last full day (int_incidents__source_days: the last day with data minus one, as extracts are cut
    mid-day, unless the mapping's `last_day` policy says the last day is complete), zero-filled.
    incident_count sums incident_count (so -1 reversals are netted); for a source with
    `orphan_reversals: net` a series-day that would be negative is clamped at 0 (counted in
    incidents_data_quality); n_records counts the kept incident records (a reversal is a
    record); is_filled is true where there was none.

    Incremental (delete+insert on series_id, date). Per source, every day from `from_day` on
    is rebuilt, from_day being this build's plan (macros/incremental_plans.sql,
    daily_counts_plan), logged by the pre-hook in meta.incremental_builds: the source's first
    day when the source is new, its first day moved or its set of series changed; otherwise
    the earliest day stg_police__incidents rewrote since this table's last build, or the day
    after the table's last day, whichever is earlier. Only the incidents from the earliest
    from_day on are read. Rows of a series no longer selected, of a source gone or outside
    their source's new range are deleted by the post-hooks. The
    result equals a full refresh (tests/test_reliability_incremental.py); `dbt build
    --full-refresh` rebuilds everything.
-#}

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['series_id', 'date'],
    on_schema_change='fail',
    pre_hook="{{ log_incremental_plan('daily_counts', daily_counts_plan()) }}",
    post_hook=[
        """
        delete from {{ this }}
        where series_id not in (select series_id from {{ ref('int_incidents__series') }})
        """,
        """
        delete from {{ this }} as t
        where t.source not in (select distinct source from {{ ref('int_incidents__kept') }})
        """,
        """
        delete from {{ this }} as t
        using {{ ref('int_incidents__source_days') }} as r
        where
            t.source = r.source
            and (t.date < r.first_day or t.date > r.last_full_day)
        """,
        "{{ mark_built('daily_counts') }}"
    ]
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

rebuild as (

    {{ build_plan('daily_counts') }}

),

{%- else %}

rebuild as (

    select
        source,
        first_day as from_day
    from source_days

),

{%- endif %}

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
