{#-
    Every raw incident row (raw.incidents, written by the loader for every city's mapping),
    renamed, typed and trimmed ('' → NULL). No mapping and no rule here: the category, the
    checks and the duplicates are int_incidents__checked.
-#}

with

source as (

    select * from {{ source('raw', 'incidents') }}

),

renamed as (

    select
        trim(source) as source,
        nullif(trim(incident_id), '') as incident_id,
        cast(occurred_at as timestamp) as occurred_at,
        nullif(trim(occurred_at_raw), '') as occurred_at_raw,
        nullif(trim(area), '') as area,
        nullif(trim(category_raw), '') as category_raw,
        nullif(upper(trim(offense_code)), '') as offense_code,
        nullif(trim(offense_description), '') as offense_description,
        cast(incident_count as integer) as incident_count,
        nullif(trim(filter_reason), '') as filter_reason,
        source_file,
        source_sha256,
        cast(source_row as bigint) as source_row,
        loaded_at,
        {{ to_date('cast(occurred_at as timestamp)') }} as occurred_date,
        -- the optional coordinates: as published, and as numbers (NULL when not a number);
        -- int_incidents__checked decides which are plausible
        nullif(trim(latitude), '') as latitude_raw,
        nullif(trim(longitude), '') as longitude_raw,
        {{ try_cast("nullif(trim(latitude), '')", 'double') }} as latitude,
        {{ try_cast("nullif(trim(longitude), '')", 'double') }} as longitude
    from source

)

select * from renamed
