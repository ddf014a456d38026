-- Every selected series (int_incidents__series) is in daily_counts, unless its source has no
-- full day.
{{ config(meta={'dagster': {'ref': {'name': 'daily_counts'}}}) }}

select series.*
from {{ ref('int_incidents__series') }} as series
where
    not exists (
        select 1
        from {{ ref('daily_counts') }} as counts
        where counts.series_id = series.series_id
    )
    and series.source in (
        select incidents.source
        from {{ ref('int_incidents__kept') }} as incidents
        group by incidents.source
        having max(incidents.occurred_date) > min(incidents.occurred_date)
    )
