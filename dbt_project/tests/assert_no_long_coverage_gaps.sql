-- Warns when a source has a run of 7 or more days with no incident at all, in any series.
-- Gap-filling writes zeros there, but a whole city with no record for a week is almost always
-- missing data (e.g. several extracts loaded as one source with years between them), not a
-- week without crime. One row per such gap.
{{ config(severity='warn', meta={'dagster': {'ref': {'name': 'daily_counts'}}}) }}

with

city_days as (

    select
        source,
        date,
        sum(incident_count) as incidents
    from {{ ref('daily_counts') }}
    -- after an incremental build: the days it rewrote and the week before them
    where date >= {{ add_days(rebuilt_from('daily_counts'), -7) }}
    group by source, date

),

runs as (

    select
        source,
        date,
        incidents,
        {{ add_days(
            'date',
            '-row_number() over (partition by source, incidents = 0 order by date)'
        ) }} as run_key
    from city_days

)

select
    source,
    min(date) as gap_start,
    max(date) as gap_end,
    count(*) as days_without_any_incident
from runs
where incidents = 0
group by source, run_key
having count(*) >= 7
