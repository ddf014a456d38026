-- The last 120 days of recorded counts per series, shown before the forecasts.
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    with last_day as (select source, max(date) as last_day from serving.daily_counts group by source)
    select c.source, c.area, c.category, c.series_id, c.date, c.incident_count
    from serving.daily_counts as c
    inner join last_day using (source)
    where c.date > last_day.last_day - interval 120 day
)
select *, false as is_placeholder from result
union all by name
select true as is_placeholder where not exists (select 1 from result)
