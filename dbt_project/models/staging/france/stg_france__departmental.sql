{#-
    SSMSI departmental file, typed and renamed; one row per département, indicator and year.
    rate_per_100k = nombre / insee_pop × 100,000 (see stg_france__regional).
-#}

with

source as (

    select * from {{ source('raw', 'france_departmental') }}

)

select
    'departement' as geo_level,
    trim(code_departement) as geo_code,
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
