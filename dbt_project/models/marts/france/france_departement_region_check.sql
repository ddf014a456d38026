{#-
    Do the départements add up to their region? Per region, indicator and year: the regional
    file's count and population beside the sums over the departmental file. `status`:
      match             counts and populations equal
      within_tolerance  populations equal, |count difference| <= tolerance × regional count
      disagree          beyond the tolerance, or populations differ
      region_only       indicator published by region only (e.g. Usage de stupéfiants (AFD))
      departements_only no regional row for départements that have data
    Tolerance: var france_check_tolerance (default 0.005 = 0.5 % of the regional count).
-#}

{%- set tolerance = var('france_check_tolerance', 0.005) %}

with

regional as (

    select
        code_region,
        indicator,
        year,
        unit,
        recorded_count,
        population
    from {{ ref('stg_france__regional') }}

),

departmental as (

    select
        code_region,
        indicator,
        year,
        min(unit) as unit,
        sum(recorded_count) as recorded_count,
        sum(population) as population,
        count(*) as n_departements
    from {{ ref('stg_france__departmental') }}
    group by code_region, indicator, year

),

joined as (

    select
        coalesce(regional.code_region, departmental.code_region) as code_region,
        coalesce(regional.indicator, departmental.indicator) as indicator,
        coalesce(regional.year, departmental.year) as year,
        coalesce(regional.unit, departmental.unit) as unit,
        regional.recorded_count as region_count,
        departmental.recorded_count as departements_count,
        regional.population as region_population,
        departmental.population as departements_population,
        coalesce(departmental.n_departements, 0) as n_departements
    from regional
    full outer join departmental
        on
            regional.code_region = departmental.code_region
            and regional.indicator = departmental.indicator
            and regional.year = departmental.year

)

select
    joined.code_region,
    regions.region_name,
    joined.indicator,
    joined.unit,
    joined.year,
    joined.region_count,
    joined.departements_count,
    joined.departements_count - joined.region_count as count_difference,
    (joined.departements_count - joined.region_count)
    / nullif(cast(joined.region_count as double), 0) as relative_difference,
    joined.region_population,
    joined.departements_population,
    joined.departements_population - joined.region_population as population_difference,
    joined.n_departements,
    {{ tolerance }} as tolerance,
    case
        when joined.departements_count is null then 'region_only'
        when joined.region_count is null then 'departements_only'
        when joined.departements_population != joined.region_population then 'disagree'
        when joined.departements_count = joined.region_count then 'match'
        when
            abs(joined.departements_count - joined.region_count)
            <= {{ tolerance }} * joined.region_count
            then 'within_tolerance'
        else 'disagree'
    end as status
from joined
left join {{ ref('france_regions') }} as regions
    on joined.code_region = cast(regions.code_region as {{ dbt.type_string() }})
