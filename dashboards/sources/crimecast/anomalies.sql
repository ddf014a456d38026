-- Anomalies of the latest run per source: test-period days whose recorded count fell outside
-- the 95 % band of the one-day-ahead forecast, at every level of the hierarchy.
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    with latest as (
        select source, max(run_id) as run_id from serving.anomalies group by source
    )

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
    from serving.anomalies as a
    inner join latest as l
        on l.source = a.source and l.run_id is not distinct from a.run_id
)

select
    *,
    false as is_placeholder
from result
union all by name
select true as is_placeholder
where not exists (select 1 from result)
