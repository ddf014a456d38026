-- Nothing is dropped silently. Per source, every row of raw.incidents is accounted for once:
--   rows read = rows in the marts + rows on the partial last day + rows of series not selected
--             + rows dropped by cleaning (every reason),
-- checked against the models, not against incidents_data_quality's own totals: the rows read
-- are counted in raw.incidents, the rows kept in int_incidents__kept, and the rows in the marts are
-- daily_counts' n_records (the kept records of its series-days), whose net incident_count plus
-- what `orphan_reversals: net` clamped (clamped_incidents, over clamped_days) is the sum of
-- daily_counts.incident_count = net_incidents_in_marts. The rows dropped include the orphan
-- reversals int_incidents__kept leaves out (reason orphan_reversal). That each daily_counts row
-- holds exactly the kept records of its series and day is assert_daily_counts_match_incidents.
-- Returns the sources that do not reconcile.
{{ config(meta={'dagster': {'ref': {'name': 'incidents_data_quality'}}}) }}

with

raw_rows as (

    select
        source,
        count(*) as n_rows
    from {{ source('raw', 'incidents') }}
    group by source

),

kept_rows as (

    select
        source,
        count(*) as n_rows
    from {{ ref('int_incidents__kept') }}
    group by source

),

daily_totals as (

    select
        source,
        sum(n_records) as n_records,
        sum(incident_count) as net_incidents
    from {{ ref('daily_counts') }}
    group by source

),

cleaning as (

    select
        source,
        max(rows_read) as rows_read,
        max(rows_kept) as rows_kept,
        max(rows_dropped) as rows_dropped,
        max(rows_in_marts) as rows_in_marts,
        max(rows_partial_last_day) as rows_partial_last_day,
        max(rows_series_not_selected) as rows_series_not_selected,
        max(net_incidents_in_marts) as net_incidents_in_marts,
        max(clamped_days) as clamped_days,
        max(clamped_incidents) as clamped_incidents,
        sum(case when status = 'dropped' then rows else 0 end) as sum_dropped
    from {{ ref('incidents_data_quality') }}
    group by source

),

-- the per-source totals must be the same on every row of the source: one distinct version
total_versions as (

    select
        source,
        count(*) as n_total_versions
    from (
        select distinct
            source,
            rows_read,
            rows_kept,
            rows_dropped,
            rows_in_marts,
            rows_partial_last_day,
            rows_series_not_selected,
            net_incidents_in_marts,
            clamped_days,
            clamped_incidents,
            last_day_complete
        from {{ ref('incidents_data_quality') }}
    ) as versions
    group by source

),

sources as (

    select source from raw_rows
    union
    select source from cleaning
    union
    select source from daily_totals

),

checked as (

    select
        sources.source,
        coalesce(raw_rows.n_rows, 0) as rows_in_raw,
        coalesce(kept_rows.n_rows, 0) as rows_in_int_incidents,
        coalesce(daily_totals.n_records, 0) as rows_counted_in_daily_counts,
        coalesce(daily_totals.net_incidents, 0) as daily_counts_net_incidents,
        cleaning.rows_read,
        cleaning.rows_kept,
        cleaning.rows_dropped,
        cleaning.sum_dropped,
        cleaning.rows_in_marts,
        cleaning.rows_partial_last_day,
        cleaning.rows_series_not_selected,
        cleaning.net_incidents_in_marts,
        cleaning.clamped_days,
        cleaning.clamped_incidents,
        total_versions.n_total_versions
    from sources
    left join raw_rows
        on sources.source = raw_rows.source
    left join kept_rows
        on sources.source = kept_rows.source
    left join daily_totals
        on sources.source = daily_totals.source
    left join cleaning
        on sources.source = cleaning.source
    left join total_versions
        on sources.source = total_versions.source

)

select *
from checked
where
    rows_read is null
    or n_total_versions != 1
    -- every row read: in the marts, or removed for a counted reason
    or rows_in_raw
    != rows_counted_in_daily_counts
    + rows_partial_last_day
    + rows_series_not_selected
    + sum_dropped
    -- the totals readers use
    or rows_read != rows_in_raw
    or rows_kept != rows_in_int_incidents
    or rows_dropped != sum_dropped
    or rows_in_marts != rows_counted_in_daily_counts
    or net_incidents_in_marts != daily_counts_net_incidents
    -- a clamped day adds at least one incident
    or clamped_incidents < clamped_days
    or (clamped_days = 0) != (clamped_incidents = 0)
