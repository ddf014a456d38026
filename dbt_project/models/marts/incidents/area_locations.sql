{#-
    Where each area of an incident source is: one row per (source, area) of the kept incidents,
    at the median latitude and longitude of its records with plausible coordinates
    (int_incidents__checked sets the others NULL). The median, not the mean: a few records
    geocoded across the city do not move it. Records are the rows with a positive count (a
    reversal repeats the record it cancels). An area without any located record has NULL
    coordinates (a mapping without coordinates: every area). Read by the map of the dashboards
    through serving.area_locations.
-#}

with

kept as (

    select * from {{ ref('int_incidents__kept') }}
    where incident_count > 0

),

by_area as (

    select
        source,
        area,
        count(*) as n_records,
        count(latitude) as n_located,
        {{ median('latitude') }} as latitude,
        {{ median('longitude') }} as longitude
    from kept
    group by source, area

),

final as (

    select
        source,
        area,
        -- 6 decimals: about 0.1 m, and the same number on every engine
        round(cast(latitude as double), 6) as latitude,
        round(cast(longitude as double), 6) as longitude,
        cast(n_records as bigint) as n_records,
        cast(n_located as bigint) as n_located,
        round(cast(n_located as double) / n_records, 6) as share_located
    from by_area

)

select * from final
