-- The latest forecast run per source at every level of the coherent hierarchy
-- (serving.forecasts_hierarchy_latest: one series, an area over all categories, a category over
-- all areas, the whole source; '*' where summed out), each with its expected count and its 80 %
-- and 95 % bands, beside the recorded daily counts of the same node over the 120 days before the
-- forecast (and any day recorded since). Totals sum the run's own series only, so that the
-- recorded line and the forecast describe the same thing.
with forecast as (
    select * from {{ ref('serving__forecasts_hierarchy_latest') }}
),

run as (
    select
        source,
        run_id,
        max(as_of_date) as as_of_date
    from forecast
    group by source, run_id
),

run_series as (
    select distinct
        source,
        area,
        category,
        series_id
    from forecast
    where level = 'area_category'
),

history as (
    select
        c.source,
        c.area,
        c.category,
        c.date,
        c.incident_count
    from {{ ref('serving__daily_counts') }} as c
    inner join run_series as s on c.source = s.source and c.series_id = s.series_id
    inner join run as r on c.source = r.source
    where c.date > {{ dbt.dateadd('day', -120, 'r.as_of_date') }}
),

-- every level of the hierarchy, '*' where summed out (a NULL area or category also reads '*')
recorded as (
    select
        source,
        coalesce(area, '*') as area,
        coalesce(category, '*') as category,
        date,
        sum(incident_count) as recorded
    from history
    group by source, area, category, date

    union all

    select
        source,
        coalesce(area, '*') as area,
        '*' as category,
        date,
        sum(incident_count) as recorded
    from history
    group by source, area, date

    union all

    select
        source,
        '*' as area,
        coalesce(category, '*') as category,
        date,
        sum(incident_count) as recorded
    from history
    group by source, category, date

    union all

    select
        source,
        '*' as area,
        '*' as category,
        date,
        sum(incident_count) as recorded
    from history
    group by source, date
)

select
    cast(coalesce(f.source, c.source) as {{ engine_type('varchar') }}) as source,
    cast(coalesce(f.area, c.area) as {{ engine_type('varchar') }}) as area,
    cast(coalesce(f.category, c.category) as {{ engine_type('varchar') }}) as category,
    cast(coalesce(f.date, c.date) as date) as date,
    cast(c.recorded as {{ engine_type('double') }}) as recorded,
    cast(f.forecast as {{ engine_type('double') }}) as expected,
    cast(f.lo_80 as {{ engine_type('double') }}) as lo_80,
    cast(f.hi_80 as {{ engine_type('double') }}) as hi_80,
    cast(f.lo_95 as {{ engine_type('double') }}) as lo_95,
    cast(f.hi_95 as {{ engine_type('double') }}) as hi_95,
    cast(f.horizon as {{ engine_type('integer') }}) as horizon,
    cast(r.run_id as {{ engine_type('varchar') }}) as run_id,
    cast(r.as_of_date as date) as as_of_date
from forecast as f
full outer join recorded as c
    on
        f.source = c.source
        and f.area = c.area
        and f.category = c.category
        and f.date = c.date
inner join run as r on coalesce(f.source, c.source) = r.source
