-- Out-of-sample backtest predictions of the latest run per source with what was recorded:
-- serving.backtest_predictions_last_cutoff (the dbt serving contract holds the rule: its test
-- split when it has one, else its last split, the latest cutoff, EVERY horizon; `expected` is
-- the predicted mean, which adds up over series where the point predictions, medians, do not).
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    select * from serving.backtest_predictions_last_cutoff
)

select
    *,
    false as is_placeholder
from result
union all by name
select true as is_placeholder
where not exists (select 1 from result)
