-- One row per area of every incident source that has a position (serving.area_locations: the
-- median of its records' plausible coordinates), with what the map shows: the expected
-- incidents of the next 7 days (the latest run's coherent area totals,
-- serving.forecasts_hierarchy_latest, horizons 1-7), the weekly mean of the last 4 recorded
-- weeks before the forecast (serving.daily_counts, the run's own series, as the totals) and the
-- change between the two, and per source (repeated) how many records read had plausible
-- coordinates and how many published ones were set aside (serving.data_quality). An area without a forecast keeps its position (expected NULL).
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    with forecast as (
        select * from serving.forecasts_hierarchy_latest
    ),

    run as (
        select source, run_id, max(as_of_date) as as_of_date
        from forecast
        group by source, run_id
    ),

    next_week as (
        select source, area, sum(forecast) as expected_7d
        from forecast
        where level = 'area' and horizon between 1 and 7
        group by source, area
    ),

    run_series as (
        select distinct source, area, series_id
        from forecast
        where level = 'area_category'
    ),

    last_4_weeks as (
        select c.source, c.area, sum(c.incident_count) / 4.0 as recorded_weekly
        from serving.daily_counts as c
        inner join run_series as s on s.source = c.source and s.series_id = c.series_id
        inner join run as r on r.source = c.source
        where c.date > r.as_of_date - interval 28 day and c.date <= r.as_of_date
        group by c.source, c.area
    ),

    coordinates as (
        select
            source,
            max(rows_read) as source_rows_read,
            max(rows_located) as source_rows_located,
            max(rows_coordinates_implausible) as source_rows_implausible
        from serving.data_quality
        group by source
    )

    select
        l.source,
        l.area,
        l.latitude,
        l.longitude,
        l.n_records,
        l.n_located,
        l.share_located,
        n.expected_7d,
        w.recorded_weekly,
        case
            when w.recorded_weekly > 0 then n.expected_7d / w.recorded_weekly - 1
        end as change_vs_4_weeks,
        r.run_id,
        r.as_of_date,
        q.source_rows_read,
        q.source_rows_located,
        q.source_rows_implausible
    from serving.area_locations as l
    left join next_week as n on n.source = l.source and n.area = l.area
    left join last_4_weeks as w on w.source = l.source and w.area = l.area
    left join run as r on r.source = l.source
    left join coordinates as q on q.source = l.source
    where l.latitude is not null
)

select
    *,
    false as is_placeholder
from result
union all by name
select true as is_placeholder
where not exists (select 1 from result)
