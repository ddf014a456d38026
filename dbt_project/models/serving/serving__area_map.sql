-- What the dashboards' map shows, one row per area of an incident source that has a position
-- (serving.area_locations: the median of its records' plausible coordinates): the expected
-- incidents of the next 7 days (the latest run's coherent area totals, horizons 1-7), the
-- weekly mean of the 4 recorded weeks before the forecast (the run's own series, as the
-- totals) and the change between the two, and per source (repeated) how many records read had
-- plausible coordinates and how many were set aside (serving.data_quality). An area without a
-- forecast keeps its position (expected NULL).
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

next_week as (
    select
        source,
        area,
        sum(forecast) as expected_7d
    from forecast
    where level = 'area' and horizon between 1 and 7
    group by source, area
),

run_series as (
    select distinct
        source,
        area,
        series_id
    from forecast
    where level = 'area_category'
),

last_4_weeks as (
    select
        c.source,
        c.area,
        sum(c.incident_count) / 4.0 as recorded_weekly
    from {{ ref('serving__daily_counts') }} as c
    inner join run_series as s on c.source = s.source and c.series_id = s.series_id
    inner join run as r on c.source = r.source
    where
        c.date > {{ dbt.dateadd('day', -28, 'r.as_of_date') }}
        and c.date <= r.as_of_date
    group by c.source, c.area
),

coordinates as (
    select
        source,
        max(rows_read) as source_rows_read,
        max(rows_located) as source_rows_located,
        max(rows_coordinates_implausible) as source_rows_implausible
    from {{ ref('serving__data_quality') }}
    group by source
)

select
    l.source,
    l.area,
    l.latitude,
    l.longitude,
    l.n_records,
    l.n_located,
    l.share_located,
    r.run_id,
    r.as_of_date,
    q.source_rows_read,
    q.source_rows_located,
    q.source_rows_implausible,
    cast(n.expected_7d as {{ engine_type('double') }}) as expected_7d,
    cast(w.recorded_weekly as {{ engine_type('double') }}) as recorded_weekly,
    cast(
        case when w.recorded_weekly > 0 then n.expected_7d / w.recorded_weekly - 1 end
        as {{ engine_type('double') }}
    ) as change_vs_4_weeks
from {{ ref('serving__area_locations') }} as l
left join next_week as n on l.source = n.source and l.area = n.area
left join last_4_weeks as w on l.source = w.source and l.area = w.area
left join run as r on l.source = r.source
left join coordinates as q on l.source = q.source
where l.latitude is not null
