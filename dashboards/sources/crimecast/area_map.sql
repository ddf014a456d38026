-- One row per located area of every incident source, with what the map shows: serving.area_map
-- (the dbt serving contract holds the rule: the next 7 days' expected incidents against the mean
-- week of the last 4, and the source's counts of located records).
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    select * from serving.area_map
)

select
    *,
    false as is_placeholder
from result
union all by name
select true as is_placeholder
where not exists (select 1 from result)
