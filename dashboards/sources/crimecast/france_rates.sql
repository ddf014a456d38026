-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    select series_id, geo_level, geo_code, geo_name, code_region, region_name, indicator, unit,
        year, recorded_count, population, rate_per_100k
    from serving.france_annual_rates
)
select *, false as is_placeholder from result
union all by name
select true as is_placeholder where not exists (select 1 from result)
