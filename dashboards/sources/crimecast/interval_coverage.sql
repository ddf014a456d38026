-- How often the recorded count fell inside the 80 % and 95 % bands in the backtests of the latest
-- run per source, per split, hierarchy level, model and horizon (pages say it in words):
-- serving.interval_coverage_pooled (the pooled rows only; the per-quartile ones split the same
-- days again).
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    select * from serving.interval_coverage_pooled
)

select
    *,
    false as is_placeholder
from result
union all by name
select true as is_placeholder
where not exists (select 1 from result)
