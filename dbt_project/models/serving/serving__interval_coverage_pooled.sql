-- How often the recorded count fell inside the 80 % and 95 % bands in the backtests of the latest
-- run per source (serving.interval_coverage_latest), per split, hierarchy level, model and
-- horizon, as the dashboards say it in words: the pooled rows only (bin 'all', or NULL from runs
-- before bins), because the per-quartile rows (bin q1..q4) split the same days again.
select
    c.source,
    c.split,
    c.level,
    c.model,
    c.horizon,
    c.nominal,
    c.coverage,
    c.n
from {{ ref('serving__interval_coverage_latest') }} as c
where coalesce(c.bin, 'all') = 'all'
