-- Forecast explanations of the latest run per source, the top drivers of each forecast with a
-- readable name for each model feature: serving.explanations_labelled (the dbt serving contract
-- holds the names: "mean of the last 28 days", not roll_mean_28).
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    select * from serving.explanations_labelled
)

select
    *,
    false as is_placeholder
from result
union all by name
select true as is_placeholder
where not exists (select 1 from result)
