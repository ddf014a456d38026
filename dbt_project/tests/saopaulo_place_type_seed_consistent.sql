{#-
    No two spellings in seeds/saopaulo_place_types.csv that match the same normalized key
    (saopaulo_match_key: accents, case, spaces ignored) may map to different place-type groups.
-#}

with

keyed as (

    select
        place_type,
        {{ saopaulo_match_key('trim(raw_subtype)') }} as subtype_key
    from {{ ref('saopaulo_place_types') }}

)

select
    subtype_key,
    count(distinct place_type) as groups
from keyed
group by subtype_key
having count(distinct place_type) > 1
