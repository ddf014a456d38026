-- Anomalies of the latest run per source: test-period days whose recorded count fell outside the
-- 95 % band of the one-day-ahead forecast, at every level of the hierarchy, with the expected
-- count: serving.anomaly_bands (the dbt serving contract).
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    select * from serving.anomaly_bands
)

select
    *,
    false as is_placeholder
from result
union all by name
select true as is_placeholder
where not exists (select 1 from result)
