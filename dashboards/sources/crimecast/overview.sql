-- One row per source of the warehouse, the incident cities, France and São Paulo: what it is,
-- how much was loaded, the period it covers, its newest record (pages count the days since) and
-- its latest forecast. French statistics are yearly (the newest record is the end of the newest
-- year); São Paulo's records carry a weekday and a period of the day but no date.
-- Evidence writes an unreadable (0-byte) parquet file for a query with no rows and the build
-- then fails, so every source query that can be empty adds ONE typed placeholder row when it
-- is (is_placeholder = true; every other column NULL). Pages filter `where not is_placeholder`.
with result as (
    with counts as (
        select
            source,
            min(date) as first_day,
            max(date) as last_day,
            count(distinct series_id) as series,
            sum(incident_count) as incidents
        from serving.daily_counts
        group by source
    ),

    files as (
        select source, sum(rows) as rows_loaded, max(loaded_at) as loaded_at
        from serving.source_files
        group by source
    ),

    runs as (
        select source, max(as_of_date) as forecast_as_of, max(date) as forecast_to
        from serving.forecasts_latest
        group by source
    ),

    france as (
        select
            min(year) as first_year,
            max(year) as last_year,
            count(distinct geo_level || geo_code) as places,
            count(*) as rows_loaded
        from serving.france_annual_rates
    ),

    france_fc as (
        select max(year) as forecast_to from serving.france_forecasts_latest
    ),

    saopaulo as (
        select
            (select sum(rows) from serving.saopaulo_source_files) as rows_loaded,
            (select max(loaded_at) from serving.saopaulo_source_files) as loaded_at,
            (
                select count(distinct neighbourhood)
                from serving.saopaulo_place_probabilities_latest
            )
                as places
    )

    select
        c.source,
        coalesce(s.title, c.source) as title,
        'daily incidents per area and category' as what,
        f.rows_loaded,
        c.series || ' series' as detail,
        c.first_day,
        c.last_day,
        strftime(c.first_day, '%Y-%m-%d') || ' to ' || strftime(c.last_day, '%Y-%m-%d') as period,
        f.loaded_at,
        'daily to ' || strftime(r.forecast_to, '%Y-%m-%d') as forecasts,
        1 as source_order
    from counts as c
    left join serving.sources as s using (source)
    left join files as f using (source)
    left join runs as r using (source)

    union all

    select
        'france',
        'France: offences recorded by the police and gendarmerie (SSMSI)',
        'yearly rates per 100,000 inhabitants, by region and département',
        rows_loaded,
        places || ' regions and départements',
        make_date(first_year, 1, 1),
        make_date(last_year, 12, 31),
        first_year || ' to ' || last_year,
        cast(null as timestamp),
        (select 'yearly to ' || forecast_to from france_fc where forecast_to is not null),
        2
    from france
    where last_year is not null

    union all

    select
        'saopaulo',
        'São Paulo: mobile-phone robberies and thefts (SSP-SP)',
        'where a recorded phone theft took place (type of place)',
        rows_loaded,
        places || ' neighbourhoods',
        cast(null as date),
        cast(null as date),
        'records carry no date (weekday and period only)',
        loaded_at,
        'probabilities of each type of place',
        3
    from saopaulo
    where rows_loaded is not null or places > 0
)

select
    *,
    false as is_placeholder
from result
union all by name
select true as is_placeholder
where not exists (select 1 from result)
