-- No series-day nets below zero. A -1 record reverses an earlier record of the same incident
-- (Houston); a reversal with nothing to reverse would make the day negative, which no model
-- can forecast. Such orphans are handled by the source's `orphan_reversals` policy before
-- daily_counts (int_incidents__orphan_reversals: `drop` leaves them out, `net` clamps the day
-- at 0), so this guards the policy itself. Severity error: the build stops before
-- daily_features (and so before ml and the published copy). Each result row names the raw
-- file and data row of a kept negative record of such a day. After an incremental build, the
-- days it rewrote are checked.
{{ config(meta={'dagster': {'ref': {'name': 'daily_counts'}}}) }}

with

negative_days as (

    select
        source,
        area,
        category,
        date,
        incident_count
    from {{ ref('daily_counts') }}
    where
        incident_count < 0
        and {{ rebuilt_days('daily_counts') }}

)

select
    negative_days.source,
    negative_days.area,
    negative_days.category,
    negative_days.date,
    negative_days.incident_count as net_count,
    incidents.source_file,
    incidents.source_row,
    incidents.incident_count
from negative_days
inner join {{ ref('int_incidents__kept') }} as incidents
    on
        negative_days.source = incidents.source
        and negative_days.area = incidents.area
        and negative_days.category = incidents.category
        and negative_days.date = incidents.occurred_date
where incidents.incident_count < 0
