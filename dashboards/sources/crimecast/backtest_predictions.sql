-- One-step-ahead backtest predictions (latest run per source) with their actuals.
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    -- latest run per source; its test split when it has one; the shortest horizon; the latest
    -- cutoff: one prediction per series, model and day (the full table can be ~1M rows)
    with latest as (
        select source, max(run_id) as run_id from serving.backtest_predictions group by source
    ),
    scope as (
        select
            p.source, p.run_id,
            case when bool_or(p.split = 'test') then 'test' else max(p.split) end as split,
            min(p.horizon) as horizon
        from serving.backtest_predictions as p
        inner join latest using (source, run_id)
        group by p.source, p.run_id
    ),
    last_cutoff as (
        select p.source, max(p.cutoff) as cutoff
        from serving.backtest_predictions as p
        inner join scope as s
            on p.source = s.source and p.run_id = s.run_id
            and p.split is not distinct from s.split and p.horizon is not distinct from s.horizon
        group by p.source
    )
    select p.source, p.area, p.category, p.series_id, p.date, p.model, p.prediction, p.actual
    from serving.backtest_predictions as p
    inner join scope as s
        on p.source = s.source and p.run_id = s.run_id
        and p.split is not distinct from s.split and p.horizon is not distinct from s.horizon
    inner join last_cutoff as c
        on p.source = c.source and p.cutoff is not distinct from c.cutoff
)
select *, false as is_placeholder from result
union all by name
select true as is_placeholder where not exists (select 1 from result)
