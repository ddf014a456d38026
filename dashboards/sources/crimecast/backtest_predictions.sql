-- One-step-ahead backtest predictions (latest run per source) with their actuals.
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    with latest as (
        select source, max(run_id) as run_id from serving.backtest_predictions group by source
    )
    select p.source, p.area, p.category, p.series_id, p.date, p.model, p.prediction, p.actual
    from serving.backtest_predictions as p
    inner join latest using (source, run_id)
)
select *, false as is_placeholder from result
union all by name
select true as is_placeholder where not exists (select 1 from result)
