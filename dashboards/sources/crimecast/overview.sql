-- One row per source of the warehouse, the incident cities, France and São Paulo: serving.overview
-- (the dbt serving contract holds the rule: what it is, how much was loaded, the period it
-- covers, its newest record, its latest forecast). Pages count the days since the newest record.
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    select * from serving.overview
)

select
    *,
    false as is_placeholder
from result
union all by name
select true as is_placeholder
where not exists (select 1 from result)
