{#-
    SSMSI regional file, typed and renamed; one row per region, indicator and year.
    rate_per_100k = nombre / insee_pop × 100,000 for every indicator (the published
    taux_pour_mille uses dwellings, not inhabitants, for burglary).
-#}

with

source as (

    select * from {{ source('raw', 'france_regional') }}

)

select
    'region' as geo_level,
    trim(code_region) as geo_code,
    trim(code_region) as code_region,
    cast(annee as integer) as year,
    trim(indicateur) as indicator,
    trim(unite_de_compte) as unit,
    cast(nombre as bigint) as recorded_count,
    cast(insee_pop as bigint) as population,
    cast(insee_log as bigint) as dwellings,
    cast(insee_pop_millesime as integer) as population_vintage,
    cast(taux_pour_mille as double) as published_rate_per_1000,
    cast(nombre as double) * 100000.0 / nullif(insee_pop, 0) as rate_per_100k,
    source_file,
    source_row
from source
