-- Anomalies of the latest run per source (serving.anomalies_latest): test-period days whose
-- recorded count fell outside the 95 % band of the one-day-ahead forecast, at every level of the
-- hierarchy.
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    select
        a.source,
        a.series_id,
        a.level,
        a.date,
        a.actual,
        a.forecast_mean as expected,
        a.lo_95,
        a.hi_95,
        a.direction,
        a.tail_probability,
        a.in_latest_window
    from serving.anomalies_latest as a
)

select
    *,
    false as is_placeholder
from result
union all by name
select true as is_placeholder
where not exists (select 1 from result)
