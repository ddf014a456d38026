{#-
    What the São Paulo cleaning kept and excluded: one row per outcome ('kept' or the
    exclusion_reason) and, for unmapped place subtypes, per subtype as published, so that a
    raw SSP subtype missing from seeds/saopaulo_place_types.csv is reported, not silently
    dropped. The rows add up to raw.saopaulo_phone_thefts.
-#}

with

staged as (

    select
        coalesce(exclusion_reason, 'kept') as outcome,
        case
            when exclusion_reason = 'unmapped_place_type' then place_subtype
        end as place_subtype
    from {{ ref('int_saopaulo__phone_thefts') }}

),

counted as (

    select
        outcome,
        place_subtype,
        count(*) as rows
    from staged
    group by outcome, place_subtype

)

select
    outcome,
    place_subtype,
    rows,
    cast(rows as double) / sum(rows) over () as share_of_rows
from counted
