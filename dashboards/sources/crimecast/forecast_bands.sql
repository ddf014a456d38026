-- The latest forecast run per source at every level of the coherent hierarchy
-- (serving.forecasts_hierarchy_latest: one series, an area over all categories, a category over all
-- areas, the whole source; '*' where summed out), each with its expected count and its 80 % and
-- 95 % bands, beside the recorded daily counts of the same node over the 120 days before the
-- forecast (and any day recorded since). Totals sum the run's own series only, so that the
-- recorded line and the forecast describe the same thing.
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    with forecast as (
        select * from serving.forecasts_hierarchy_latest
    ),

    run as (
        select source, run_id, max(as_of_date) as as_of_date
        from forecast
        group by source, run_id
    ),

    run_series as (
        select distinct source, area, category, series_id
        from forecast
        where level = 'area_category'
    ),

    history as (
        select c.source, c.area, c.category, c.date, c.incident_count
        from serving.daily_counts as c
        inner join run_series as s using (source, series_id)
        inner join run as r on r.source = c.source
        where c.date > r.as_of_date - interval 120 day
    ),

    recorded as (
        select
            source,
            coalesce(area, '*') as area,
            coalesce(category, '*') as category,
            date,
            sum(incident_count) as recorded
        from history
        group by grouping sets (
            (source, area, category, date), (source, area, date), (source, category, date),
            (source, date)
        )
    )

    select
        coalesce(f.source, c.source) as source,
        coalesce(f.area, c.area) as area,
        coalesce(f.category, c.category) as category,
        coalesce(f.date, c.date) as date,
        c.recorded,
        f.forecast as expected,
        f.lo_80,
        f.hi_80,
        f.lo_95,
        f.hi_95,
        f.horizon,
        r.run_id,
        r.as_of_date
    from forecast as f
    full outer join recorded as c
        on c.source = f.source and c.area = f.area and c.category = f.category and c.date = f.date
    inner join run as r on r.source = coalesce(f.source, c.source)
)

select
    *,
    false as is_placeholder
from result
union all by name
select true as is_placeholder
where not exists (select 1 from result)
