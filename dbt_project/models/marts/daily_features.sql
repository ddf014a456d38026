{#-
    Model features for every daily_counts row (the target is incident_count). Lags and rolling
    windows are ROWS frames over the gap-free daily series of each series_id (daily_counts is
    zero-filled, so one row = one day). Rolling windows end THE DAY BEFORE the target day and
    are NULL until full; roll_std_* is the sample standard deviation (ddof = 1). area_code and
    category_code are dense ranks over the selected series (int_series) of each source.
-#}

with

counts as (

    select * from {{ ref('daily_counts') }}

),

series_codes as (

    -- dense ranks over the few selected series, not over every daily row
    select
        series_id,
        cast(dense_rank() over (partition by source order by area) as integer) as area_code,
        cast(dense_rank() over (partition by source order by category) as integer)
            as category_code
    from {{ ref('int_series') }}

),

sources as (

    select
        trim(source) as source,
        upper(trim(country)) as country
    from {{ source('raw', 'sources') }}

),

holidays as (

    select distinct
        upper(trim(country)) as country,
        cast(date as date) as holiday_date
    from {{ ref('holidays') }}

),

windowed as (

    select
        source,
        series_id,
        area,
        category,
        date,
        incident_count,
        is_filled,
        lag(incident_count, 1) over by_day as lag_1,
        lag(incident_count, 7) over by_day as lag_7,
        lag(incident_count, 14) over by_day as lag_14,
        lag(incident_count, 28) over by_day as lag_28,
        lag(incident_count, 364) over by_day as lag_364,
        case
            when count(incident_count) over last_7_days = 7
                then avg(incident_count) over last_7_days
        end as roll_mean_7,
        case
            when count(incident_count) over last_7_days = 7
                then stddev_samp(incident_count) over last_7_days
        end as roll_std_7,
        case
            when count(incident_count) over last_28_days = 28
                then avg(incident_count) over last_28_days
        end as roll_mean_28,
        case
            when count(incident_count) over last_28_days = 28
                then stddev_samp(incident_count) over last_28_days
        end as roll_std_28
    from counts
    window
        by_day as (partition by series_id order by date),
        last_7_days as (
            partition by series_id order by date
            rows between 7 preceding and 1 preceding
        ),
        last_28_days as (
            partition by series_id order by date
            rows between 28 preceding and 1 preceding
        )

),

final as (

    select
        windowed.source,
        windowed.series_id,
        windowed.area,
        windowed.category,
        windowed.date,
        windowed.incident_count,
        windowed.is_filled,
        windowed.lag_1,
        windowed.lag_7,
        windowed.lag_14,
        windowed.lag_28,
        windowed.lag_364,
        cast(windowed.roll_mean_7 as double) as roll_mean_7,
        cast(windowed.roll_std_7 as double) as roll_std_7,
        cast(windowed.roll_mean_28 as double) as roll_mean_28,
        cast(windowed.roll_std_28 as double) as roll_std_28,
        cast({{ day_of_week_monday0('windowed.date') }} as integer) as day_of_week,
        cast(extract(month from windowed.date) as integer) as month,
        sin(2 * pi() * {{ day_of_year('windowed.date') }} / 365.25) as doy_sin,
        cos(2 * pi() * {{ day_of_year('windowed.date') }} / 365.25) as doy_cos,
        holidays.holiday_date is not null as is_holiday,
        series_codes.area_code,
        series_codes.category_code
    from windowed
    inner join series_codes
        on windowed.series_id = series_codes.series_id
    left join sources
        on windowed.source = sources.source
    left join holidays
        on
            sources.country = holidays.country
            and windowed.date = holidays.holiday_date

)

select * from final
