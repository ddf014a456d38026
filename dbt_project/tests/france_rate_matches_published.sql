{#-
    Rate arithmetic: the published taux_pour_mille equals nombre / insee_pop × 1,000, except
    for burglary ("Cambriolages de logement"), published per 1,000 dwellings (insee_log).
    Published rates carry 7 decimals (absolute tolerance 1e-6); the published burglary rates
    differ from ours by up to ~3e-7 relative (a rounded denominator), hence also a 1e-5
    relative tolerance. Our rate_per_100k always uses the population.
-#}

with

both_levels as (

    select
        geo_level,
        geo_code,
        indicator,
        year,
        recorded_count,
        population,
        dwellings,
        published_rate_per_1000
    from {{ ref('stg_france__regional') }}

    union all

    select
        geo_level,
        geo_code,
        indicator,
        year,
        recorded_count,
        population,
        dwellings,
        published_rate_per_1000
    from {{ ref('stg_france__departmental') }}

),

recomputed as (

    select
        *,
        cast(recorded_count as double) * 1000.0 / nullif(
            case
                when indicator = 'Cambriolages de logement' then dwellings else population
            end,
            0
        ) as expected_rate_per_1000
    from both_levels

)

select *
from recomputed
where
    abs(published_rate_per_1000 - expected_rate_per_1000)
    > greatest(1e-6, 1e-5 * expected_rate_per_1000)
