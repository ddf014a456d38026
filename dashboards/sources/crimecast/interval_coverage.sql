-- How often the recorded count fell inside the 80 % and 95 % bands in the backtests of the latest
-- run per source (serving.interval_coverage_latest), per split, hierarchy level, model and
-- horizon: pages say it in words.
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    select c.source, c.split, c.level, c.model, c.horizon, c.nominal, c.coverage, c.n
    from serving.interval_coverage_latest as c
    -- the pooled rows only: the per-quartile rows (bin q1..q4) split the same days again
    where coalesce(c.bin, 'all') = 'all'
)

select
    *,
    false as is_placeholder
from result
union all by name
select true as is_placeholder
where not exists (select 1 from result)
