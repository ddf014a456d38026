{#-
    The usable São Paulo phone robbery/theft records: one row per raw row whose
    exclusion_reason is NULL (see int_saopaulo__phone_thefts and saopaulo_data_quality for
    what was excluded and why). Input of ml/saopaulo/.
-#}

select
    source_file,
    source_row,
    neighbourhood,
    brand,
    weekday,
    weekday_number,
    period,
    offence,
    place_type,
    place_subtype,
    age,
    sex
from {{ ref('int_saopaulo__phone_thefts') }}
where exclusion_reason is null
