{#-
    Both SSMSI files as one long table of annual series, with names from the seeds.
    series_id = geo_level|geo_code|indicator (each indicator has one unit of count).
-#}

with

regional as (

    select * from {{ ref('stg_france__regional') }}

),

departmental as (

    select * from {{ ref('stg_france__departmental') }}

),

regions as (

    select
        cast(code_region as {{ dbt.type_string() }}) as code_region,
        region_name
    from {{ ref('france_regions') }}

),

departements as (

    select
        cast(code_departement as {{ dbt.type_string() }}) as code_departement,
        departement_name
    from {{ ref('france_departements') }}

),

unioned as (

    select
        geo_level,
        geo_code,
        code_region,
        year,
        indicator,
        unit,
        recorded_count,
        population,
        rate_per_100k
    from regional

    union all

    select
        geo_level,
        geo_code,
        code_region,
        year,
        indicator,
        unit,
        recorded_count,
        population,
        rate_per_100k
    from departmental

)

select
    unioned.geo_level || '|' || unioned.geo_code || '|' || unioned.indicator as series_id,
    unioned.geo_level,
    unioned.geo_code,
    coalesce(departements.departement_name, regions.region_name) as geo_name,
    unioned.code_region,
    regions.region_name,
    unioned.indicator,
    unioned.unit,
    unioned.year,
    unioned.recorded_count,
    unioned.population,
    unioned.rate_per_100k
from unioned
left join regions
    on unioned.code_region = regions.code_region
left join departements
    on
        unioned.geo_level = 'departement'
        and unioned.geo_code = departements.code_departement
