-- Out-of-sample backtest predictions of the latest run per source
-- (serving.backtest_predictions_latest), with what was recorded: its
-- test split when it has one (else its last split), the latest cutoff, EVERY horizon (the page
-- shows the chosen one). `expected` is the predicted mean (prediction_mean; the point
-- prediction when a run has none): sums over series must add expected counts, because the
-- point predictions of count models are medians, which do not add up (summed, they run below
-- the recorded total).
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    with scope as (
        select
            p.source,
            p.run_id,
            case when bool_or(p.split = 'test') then 'test' else max(p.split) end as split
        from serving.backtest_predictions_latest as p
        group by p.source, p.run_id
    ),

    last_cutoff as (
        select p.source, max(p.cutoff) as cutoff
        from serving.backtest_predictions_latest as p
        inner join scope as s
            on p.source = s.source and p.run_id = s.run_id
            and p.split is not distinct from s.split
        group by p.source
    )

    select
        p.source,
        p.area,
        p.category,
        p.date,
        p.horizon,
        p.model,
        coalesce(p.prediction_mean, p.prediction) as expected,
        p.actual
    from serving.backtest_predictions_latest as p
    inner join scope as s
        on p.source = s.source and p.run_id = s.run_id
        and p.split is not distinct from s.split
    inner join last_cutoff as c
        on p.source = c.source and p.cutoff is not distinct from c.cutoff
)

select
    *,
    false as is_placeholder
from result
union all by name
select true as is_placeholder
where not exists (select 1 from result)
