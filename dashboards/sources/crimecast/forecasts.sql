-- The latest run's daily forecasts per source (point forecast, and the mean where published),
-- with the intervals (NULL until the pipeline
-- writes them) and, where the day has happened since, the recorded count.
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    with latest as (
        select source, max(run_id) as run_id from serving.forecasts group by source
    )
    select
        f.run_id, f.as_of_date, f.source, f.area, f.category, f.series_id, f.date, f.horizon,
        f.model, f.forecast, f.forecast_mean, f.lo_80, f.hi_80, f.lo_95, f.hi_95,
        c.incident_count as actual
    from serving.forecasts as f
    inner join latest using (source, run_id)
    left join serving.daily_counts as c using (series_id, date)
)
select *, false as is_placeholder from result
union all by name
select true as is_placeholder where not exists (select 1 from result)
