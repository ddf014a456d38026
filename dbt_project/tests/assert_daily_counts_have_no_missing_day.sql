-- Every series of daily_counts is gap-free and covers its source's whole range: one row per
-- day from the source's first day to its last full day (int_incidents__source_days).
-- After an incremental build only the days it rewrote are checked (from rebuilt_from, see
-- macros/incremental_window.sql): they must run without a gap from that day (or the source's
-- first day) to the last full day; the days before were checked when they were written.
{{ config(meta={'dagster': {'ref': {'name': 'daily_counts'}}}) }}

with

window_start as (

    select {{ rebuilt_from('daily_counts') }} as from_day

),

counts as (

    select * from {{ ref('daily_counts') }}
    where date >= (select window_start.from_day from window_start)

),

source_days as (

    select
        source,
        greatest(first_day, (select window_start.from_day from window_start)) as first_day,
        last_full_day
    from {{ ref('int_incidents__source_days') }}

),

per_series as (

    select
        source,
        series_id,
        min(date) as first_date,
        max(date) as last_date,
        count(*) as n_days,
        count(distinct date) as n_distinct_days
    from counts
    group by source, series_id

)

select
    per_series.*,
    source_days.first_day,
    source_days.last_full_day
from per_series
left join source_days
    on per_series.source = source_days.source
where
    source_days.source is null
    or per_series.first_date != source_days.first_day
    or per_series.last_date != source_days.last_full_day
    or per_series.n_days != per_series.n_distinct_days
    or per_series.n_days != 1 + (
        {{ dbt.datediff('per_series.first_date', 'per_series.last_date', 'day') }}
    )
