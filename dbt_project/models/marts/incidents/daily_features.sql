{#-
    Model features for every daily_counts row (the target is incident_count). Lags and rolling
    windows are ROWS frames over the gap-free daily series of each series_id (daily_counts is
    zero-filled, so one row = one day). Rolling windows end THE DAY BEFORE the target day and
    are NULL until full; roll_std_* is the sample standard deviation (ddof = 1). area_code and
    category_code are dense ranks over the selected series (int_incidents__series) of each source.

    Incremental (delete+insert on series_id, date). Per source, rows from `from_day` on are
    rebuilt, from_day being this build's plan (macros/incremental_plans.sql,
    daily_features_plan), logged by the pre-hook in meta.incremental_builds: the source's first
    day when the source is new or its area/category codes changed; otherwise the earliest day
    daily_counts rewrote since this table's last build, or the day after its last day. The
    windows read daily_counts from from_day - 364 days (the longest lag), so every rebuilt row
    sees its whole history. Rows no longer in daily_counts are deleted by the post-hook. A
    change of the holidays seed or of raw.sources.country needs `dbt build --full-refresh`.
-#}

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['series_id', 'date'],
    on_schema_change='fail',
    pre_hook="{{ log_incremental_plan('daily_features', daily_features_plan()) }}",
    post_hook=[
        """
        delete from {{ this }}
        where series_id not in (select distinct series_id from {{ ref('daily_counts') }})
        """,
        """
        delete from {{ this }} as t
        where exists (
            select 1
            from (
                select
                    source,
                    min(date) as first_day,
                    max(date) as last_day
                from {{ ref('daily_counts') }}
                group by source
            ) as r
            where
                t.source = r.source
                and (t.date < r.first_day or t.date > r.last_day)
        )
        """,
        "{{ mark_built('daily_features') }}"
    ]
) }}

with

all_counts as {{ inline_cte() }} (

    select * from {{ ref('daily_counts') }}

),

series_codes as (

    -- dense ranks over the few selected series, not over every daily row
    {{ series_codes() }}

),

{% if is_incremental() -%}

rebuild as (

    {{ build_plan('daily_features') }}

),

{%- else %}

rebuild as (

    select
        source,
        min(date) as from_day
    from all_counts
    group by source

),

{%- endif %}

-- the rows to rebuild and the 364 days before them (the longest lag)
counts as (

    select all_counts.*
    from all_counts
    inner join rebuild
        on all_counts.source = rebuild.source
    where all_counts.date >= {{ add_days('rebuild.from_day', -364) }}

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
        -- from exact integer window sums (n, Σx, Σx²): the same bits whatever the partition
        -- size, so an incremental build equals a full refresh exactly (avg / stddev_samp
        -- combine partial doubles in an order that depends on the partition). Divided as
        -- doubles: an engine may divide an integer sum by 7.0 as a decimal of fixed scale.
        case
            when count(incident_count) over last_7_days = 7
                then cast(sum(incident_count) over last_7_days as double) / 7.0
        end as roll_mean_7,
        case
            when count(incident_count) over last_7_days = 7
                then sqrt(
                        (
                            7
                            * sum(cast(incident_count as bigint) * incident_count) over last_7_days
                            - power(sum(cast(incident_count as bigint)) over last_7_days, 2)
                        ) / 42.0
                    )
        end as roll_std_7,
        case
            when count(incident_count) over last_28_days = 28
                then cast(sum(incident_count) over last_28_days as double) / 28.0
        end as roll_mean_28,
        case
            when count(incident_count) over last_28_days = 28
                then sqrt(
                        (
                            28 * sum(cast(incident_count as bigint) * incident_count)
                                over last_28_days
                            - power(sum(cast(incident_count as bigint)) over last_28_days, 2)
                        ) / 756.0
                    )
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
    inner join rebuild
        on
            windowed.source = rebuild.source
            and windowed.date >= rebuild.from_day
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
