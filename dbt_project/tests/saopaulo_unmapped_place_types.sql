{#-
    Reports (as a warning, not an error) the place subtypes that
    seeds/saopaulo_place_types.csv does not map, with their row counts: those rows are
    excluded from the mart. Add the subtypes to the seed to use them.
-#}
{{ config(severity='warn') }}

select
    place_subtype,
    rows
from {{ ref('saopaulo_data_quality') }}
where outcome = 'unmapped_place_type'
