-- daily_features has exactly one row per daily_counts row, with the same target value.
{{ config(meta={'dagster': {'ref': {'name': 'daily_features'}}}) }}

select
    coalesce(counts.series_id, features.series_id) as series_id,
    coalesce(counts.date, features.date) as date,
    counts.incident_count as count_in_daily_counts,
    features.incident_count as count_in_daily_features
from {{ ref('daily_counts') }} as counts
full outer join {{ ref('daily_features') }} as features
    on
        counts.series_id = features.series_id
        and counts.date = features.date
where
    counts.series_id is null
    or features.series_id is null
    or counts.incident_count != features.incident_count
