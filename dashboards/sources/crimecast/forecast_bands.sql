-- The latest forecast run per source at every level of the coherent hierarchy, expected counts
-- with their 80 % and 95 % bands beside the recorded daily counts of the same node:
-- serving.forecast_bands (the dbt serving contract holds the rule: the 120 days before the
-- forecast and any day since, totals over the run's own series only).
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    select * from serving.forecast_bands
)

select
    *,
    false as is_placeholder
from result
union all by name
select true as is_placeholder
where not exists (select 1 from result)
