-- Readable labels and a natural order for every series of the incident sources and for the
-- totals of the coherent hierarchy: serving.series_labels (the dbt serving contract holds the
-- rule: Boston's district names, "District 10", "All areas", areas 1, 2, 10 in that order).
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    select * from serving.series_labels
)

select
    *,
    false as is_placeholder
from result
union all by name
select true as is_placeholder
where not exists (select 1 from result)
