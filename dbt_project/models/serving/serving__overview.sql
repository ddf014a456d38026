-- One row per source of the warehouse, the incident cities, France and São Paulo, as the
-- dashboards' overview lists them: what it is, how much was loaded, the period it covers, its
-- newest record (pages count the days since) and its latest forecast. French statistics are
-- yearly (the newest record is the end of the newest year); São Paulo's records carry a weekday
-- and a period of the day but no date. France and São Paulo appear once they have data.
-- Dates are written as text by a cast (YYYY-MM-DD on every engine).
with counts as (
    select
        source,
        min(date) as first_day,
        max(date) as last_day,
        count(distinct series_id) as series
    from {{ ref('serving__daily_counts') }}
    group by source
),

files as (
    select
        source,
        sum(rows) as rows_loaded,
        max(loaded_at) as loaded_at
    from {{ ref('serving__source_files') }}
    group by source
),

runs as (
    select
        source,
        max(date) as forecast_to
    from {{ ref('serving__forecasts_latest') }}
    group by source
),

france as (
    select
        min(year) as first_year,
        max(year) as last_year,
        count(distinct geo_level || geo_code) as places,
        count(*) as rows_loaded
    from {{ ref('serving__france_annual_rates') }}
),

france_fc as (
    select max(year) as forecast_to from {{ ref('serving__france_forecasts_latest') }}
),

saopaulo as (
    select
        (select sum(rows) from {{ ref('serving__saopaulo_source_files') }}) as rows_loaded,
        (select max(loaded_at) from {{ ref('serving__saopaulo_source_files') }}) as loaded_at,
        (
            select count(distinct neighbourhood)
            from {{ ref('serving__saopaulo_place_probabilities_latest') }}
        ) as places
),

overview as (
    select
        c.source,
        coalesce(s.title, c.source) as title,
        'daily incidents per area and category' as what,
        f.rows_loaded,
        cast(c.series as {{ engine_type('varchar') }}) || ' series' as detail,
        c.first_day,
        c.last_day,
        cast(c.first_day as {{ engine_type('varchar') }}) || ' to '
        || cast(c.last_day as {{ engine_type('varchar') }}) as period,
        f.loaded_at,
        'daily to ' || cast(r.forecast_to as {{ engine_type('varchar') }}) as forecasts,
        1 as source_order
    from counts as c
    left join {{ ref('serving__sources') }} as s on c.source = s.source
    left join files as f on c.source = f.source
    left join runs as r on c.source = r.source

    union all

    select
        'france' as source,
        'France: offences recorded by the police and gendarmerie (SSMSI)' as title,
        'yearly rates per 100,000 inhabitants, by region and département' as what,
        rows_loaded,
        cast(places as {{ engine_type('varchar') }}) || ' regions and départements' as detail,
        make_date(first_year, 1, 1) as first_day,
        make_date(last_year, 12, 31) as last_day,
        cast(first_year as {{ engine_type('varchar') }}) || ' to '
        || cast(last_year as {{ engine_type('varchar') }}) as period,
        cast(null as timestamp) as loaded_at,
        (
            select 'yearly to ' || cast(fc.forecast_to as {{ engine_type('varchar') }})
            from france_fc as fc
            where fc.forecast_to is not null
        ) as forecasts,
        2 as source_order
    from france
    where last_year is not null

    union all

    select
        'saopaulo' as source,
        'São Paulo: mobile-phone robberies and thefts (SSP-SP)' as title,
        'where a recorded phone theft took place (type of place)' as what,
        rows_loaded,
        cast(places as {{ engine_type('varchar') }}) || ' neighbourhoods' as detail,
        cast(null as date) as first_day,
        cast(null as date) as last_day,
        'records carry no date (weekday and period only)' as period,
        loaded_at,
        'probabilities of each type of place' as forecasts,
        3 as source_order
    from saopaulo
    where rows_loaded is not null or places > 0
)

select
    cast(source as {{ engine_type('varchar') }}) as source,
    cast(title as {{ engine_type('varchar') }}) as title,
    cast(what as {{ engine_type('varchar') }}) as what,
    cast(rows_loaded as {{ engine_type('bigint') }}) as rows_loaded,
    cast(detail as {{ engine_type('varchar') }}) as detail,
    cast(first_day as date) as first_day,
    cast(last_day as date) as last_day,
    cast(period as {{ engine_type('varchar') }}) as period,
    cast(loaded_at as timestamp) as loaded_at,
    cast(forecasts as {{ engine_type('varchar') }}) as forecasts,
    cast(source_order as {{ engine_type('integer') }}) as source_order
from overview
