{#-
    Features for annual forecasting: one row per series and TARGET year, from the level's
    second year to one year past its last (that last row, is_forecast_row, has no target and
    carries the features of the operational forecast). Every feature of year t uses only years
    < t: lags, the 3-year rolling mean ENDING THE YEAR BEFORE t, the 3-year slope, and the
    wider-area context (parent area = the region for a département, France = the sum of
    regions for a region; national = the sum over the level) taken at t-1 and t-2.
    The yearly spine is gap-free per series, so ROWS frames count years. Ratios are taken in
    double precision (an engine may divide decimals at a fixed scale).
-#}

with

series as (

    select
        *,
        case when geo_level = 'region' then 'FR' else code_region end as parent_code
    from {{ ref('int_france__annual_series') }}

),

bounds as (

    select
        geo_level,
        min(year) as first_year,
        max(year) as last_year
    from series
    group by geo_level

),

series_keys as (

    select distinct
        series_id,
        geo_level,
        geo_code,
        geo_name,
        code_region,
        region_name,
        indicator,
        unit,
        parent_code
    from series

),

years as (

    {{ integer_spine(
        '(select min(first_year) from bounds)', '(select max(last_year) + 1 from bounds)', 'year'
    ) }}

),

spine as (

    select
        series_keys.*,
        bounds.first_year,
        bounds.last_year,
        years.year
    from series_keys
    inner join bounds
        on series_keys.geo_level = bounds.geo_level
    inner join years
        on years.year between bounds.first_year and bounds.last_year + 1

),

observed as (

    select
        spine.*,
        series.recorded_count,
        series.population,
        series.rate_per_100k
    from spine
    left join series
        on
            spine.series_id = series.series_id
            and spine.year = series.year

),

parent_totals as (

    select
        geo_level,
        parent_code,
        indicator,
        year,
        sum(recorded_count) as recorded_count,
        sum(population) as population
    from series
    group by geo_level, parent_code, indicator, year

),

national_totals as (

    select
        geo_level,
        indicator,
        year,
        sum(recorded_count) as recorded_count
    from series
    group by geo_level, indicator, year

),

windowed as (

    select
        *,
        lag(rate_per_100k, 1) over by_year as lag_1,
        lag(rate_per_100k, 2) over by_year as lag_2,
        lag(rate_per_100k, 3) over by_year as lag_3,
        lag(recorded_count, 1) over by_year as count_lag_1,
        lag(population, 1) over by_year as population_lag_1,
        case
            when count(rate_per_100k) over last_3_years = 3
                then avg(rate_per_100k) over last_3_years
        end as roll_mean_3,
        count(rate_per_100k) over all_past_years as n_past_years
    from observed
    window
        by_year as (partition by series_id order by year),
        last_3_years as (
            partition by series_id order by year
            rows between 3 preceding and 1 preceding
        ),
        all_past_years as (
            partition by series_id order by year
            rows between unbounded preceding and 1 preceding
        )

)

select
    windowed.series_id,
    windowed.geo_level,
    windowed.geo_code,
    windowed.geo_name,
    windowed.code_region,
    windowed.region_name,
    windowed.indicator,
    windowed.unit,
    windowed.year,
    windowed.rate_per_100k as y,
    windowed.recorded_count,
    windowed.population,
    windowed.year > windowed.last_year as is_forecast_row,
    windowed.lag_1,
    windowed.lag_2,
    windowed.lag_3,
    windowed.roll_mean_3,
    (windowed.lag_1 - windowed.lag_3) / 2.0 as trend_slope_3,
    windowed.year - windowed.first_year as year_index,
    windowed.n_past_years,
    windowed.count_lag_1,
    windowed.population_lag_1,
    cast(parent_1.recorded_count as double) * 100000.0 / nullif(parent_1.population, 0)
        as parent_rate_lag_1,
    ln(cast(parent_1.recorded_count + 1 as double) / cast(parent_2.recorded_count + 1 as double))
        as parent_log_growth_lag_1,
    ln(
        cast(national_1.recorded_count + 1 as double)
        / cast(national_2.recorded_count + 1 as double)
    ) as national_log_growth_lag_1,
    dense_rank() over (order by windowed.indicator) as indicator_code,
    dense_rank() over (
        partition by windowed.geo_level order by windowed.geo_code
    ) as geo_code_index
from windowed
left join parent_totals as parent_1
    on
        windowed.geo_level = parent_1.geo_level
        and windowed.parent_code = parent_1.parent_code
        and windowed.indicator = parent_1.indicator
        and windowed.year - 1 = parent_1.year
left join parent_totals as parent_2
    on
        windowed.geo_level = parent_2.geo_level
        and windowed.parent_code = parent_2.parent_code
        and windowed.indicator = parent_2.indicator
        and windowed.year - 2 = parent_2.year
left join national_totals as national_1
    on
        windowed.geo_level = national_1.geo_level
        and windowed.indicator = national_1.indicator
        and windowed.year - 1 = national_1.year
left join national_totals as national_2
    on
        windowed.geo_level = national_2.geo_level
        and windowed.indicator = national_2.indicator
        and windowed.year - 2 = national_2.year
where windowed.year > windowed.first_year
