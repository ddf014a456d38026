{#-
    No two spellings in seeds/saopaulo_place_types.csv that match the same normalized key
    (accents, case, spaces ignored) may map to different place-type groups.
-#}

with

keyed as (

    select
        place_type,
        trim(regexp_replace(
            regexp_replace(upper(strip_accents(trim(raw_subtype))), '\s*/\s*', '/', 'g'),
            '\s+', ' ', 'g'
        )) as subtype_key
    from {{ ref('saopaulo_place_types') }}

)

select
    subtype_key,
    count(distinct place_type) as groups
from keyed
group by subtype_key
having count(distinct place_type) > 1
