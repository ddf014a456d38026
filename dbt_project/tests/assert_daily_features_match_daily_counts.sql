-- daily_features has exactly one row per daily_counts row, with the same target value.
-- After incremental builds, from the first day either of them rewrote in this invocation.
{{ config(meta={'dagster': {'ref': {'name': 'daily_features'}}}) }}

with

window_start as (

    select
        least(
            {{ rebuilt_from('daily_counts') }},
            {{ rebuilt_from('daily_features') }}
        ) as from_day

),

counts as (

    select * from {{ ref('daily_counts') }}
    where date >= (select window_start.from_day from window_start)

),

features as (

    select * from {{ ref('daily_features') }}
    where date >= (select window_start.from_day from window_start)

)

select
    coalesce(counts.series_id, features.series_id) as series_id,
    coalesce(counts.date, features.date) as date,
    counts.incident_count as count_in_daily_counts,
    features.incident_count as count_in_daily_features
from counts
full outer join features
    on
        counts.series_id = features.series_id
        and counts.date = features.date
where
    counts.series_id is null
    or features.series_id is null
    or counts.incident_count != features.incident_count
