-- daily_counts holds exactly the kept incidents (int_incidents__kept) of the selected series
-- (int_incidents__series) on the source's full days (int_incidents__source_days): per series
-- and day, incident_count is their net count (clamped at 0 for `orphan_reversals: net`) and
-- n_records their number, and a day with none is a filled 0. After an incremental
-- build, the days it rewrote (rebuilt_from, macros/incremental_window.sql); after a full one,
-- every day. Returns the series-days that differ.
{{ config(meta={'dagster': {'ref': {'name': 'daily_counts'}}}) }}

with

window_start as (

    select {{ rebuilt_from('daily_counts') }} as from_day

),

source_days as (

    select * from {{ ref('int_incidents__source_days') }}

),

expected as (

    select
        series.series_id,
        incidents.occurred_date as date,
        case
            when max(source_days.orphan_reversals) = 'net'
                then greatest(sum(incidents.incident_count), 0)
            else sum(incidents.incident_count)
        end as incident_count,
        count(*) as n_records
    from {{ ref('int_incidents__kept') }} as incidents
    inner join {{ ref('int_incidents__series') }} as series
        on
            incidents.source = series.source
            and incidents.area = series.area
            and incidents.category = series.category
    inner join source_days
        on incidents.source = source_days.source
    where
        incidents.occurred_date >= (select window_start.from_day from window_start)
        and incidents.occurred_date <= source_days.last_full_day
    group by series.series_id, incidents.occurred_date

),

recorded as (

    select
        series_id,
        date,
        incident_count,
        n_records
    from {{ ref('daily_counts') }}
    where
        date >= (select window_start.from_day from window_start)
        and not is_filled

)

select
    coalesce(expected.series_id, recorded.series_id) as series_id,
    coalesce(expected.date, recorded.date) as date,
    expected.incident_count as expected_incident_count,
    recorded.incident_count as recorded_incident_count,
    expected.n_records as expected_n_records,
    recorded.n_records as recorded_n_records
from expected
full outer join recorded
    on
        expected.series_id = recorded.series_id
        and expected.date = recorded.date
where
    expected.series_id is null
    or recorded.series_id is null
    or expected.incident_count != recorded.incident_count
    or expected.n_records != recorded.n_records
