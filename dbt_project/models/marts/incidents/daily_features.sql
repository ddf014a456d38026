{#-
    Model features for every daily_counts row (the target is incident_count). Lags and rolling
    windows are ROWS frames over the gap-free daily series of each series_id (daily_counts is
    zero-filled, so one row = one day). Rolling windows end THE DAY BEFORE the target day and
    are NULL until full; roll_std_* is the sample standard deviation (ddof = 1). area_code and
    category_code are dense ranks over the selected series (int_incidents__series) of each source.
    Which lags and windows: the vars daily_feature_lags and daily_feature_windows of
    dbt_project.yml, the one list (ml/features.py reads the same vars).

    Incremental by rebuild window (macros/incremental_window.sql): per source, rows from
    `from_day` on are rebuilt and replace the same (source, day) of the table (delete+insert
    on DuckDB; on Spark a table rebuilt whole). from_day is the
    source's first day in daily_counts when the table has no row of it, its first day moved
    or its series or area/category codes changed; otherwise the earlier of the window's day
    (var rebuild_from) and the day after the table's last day. The windows read daily_counts
    from from_day minus the longest lag, so every rebuilt row sees its whole history.
    A change of the holidays seed or of raw.sources.country needs `dbt build --full-refresh`.
-#}

{{ config(
    on_schema_change='fail',
    **rebuild_window_config(['source', 'date'])
) }}

{%- set lags = var('daily_feature_lags') %}
{%- set windows = var('daily_feature_windows') %}
{%- set lookback = [lags | max, windows | max] | max %}

with

all_counts as {{ inline_cte() }} (

    select * from {{ ref('daily_counts') }}

),

series_codes as (

    -- dense ranks over the few selected series, not over every daily row
    {{ series_codes() }}

),

count_days as (

    select
        source,
        min(date) as first_day
    from all_counts
    group by source

),

{% if is_incremental() -%}

built as (

    select
        source,
        min(date) as first_day,
        max(date) as last_day
    from {{ this }}
    group by source

),

built_codes as (

    select distinct
        t.source,
        t.series_id,
        t.area_code,
        t.category_code
    from {{ this }} as t
    inner join built
        on
            t.source = built.source
            and t.date = built.last_day

),

code_changes as (

    select distinct source
    from (
        (
            select source, series_id, area_code, category_code from series_codes
            except
            select source, series_id, area_code, category_code from built_codes
        )
        union all
        (
            select source, series_id, area_code, category_code from built_codes
            except
            select source, series_id, area_code, category_code from series_codes
        )
    ) as changed

),

{%- endif %}

-- per source, the first day rebuilt (macros/incremental_window.sql)
rebuild as (

    {{ rebuild_from_days('count_days', 'code_changes') }}

),

-- the rows to rebuild and the days before them that their longest lag or window reads
counts as (

    select all_counts.*
    from all_counts
    inner join rebuild
        on all_counts.source = rebuild.source
    where all_counts.date >= {{ add_days('rebuild.from_day', -lookback) }}

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
        {% for k in lags %}
        lag(incident_count, {{ k }}) over by_day as lag_{{ k }},
        {% endfor %}
        -- from exact integer window sums (n, Σx, Σx²): the same bits whatever the partition
        -- size, so an incremental build equals a full refresh exactly (avg / stddev_samp
        -- combine partial doubles in an order that depends on the partition). Divided as
        -- doubles: an engine may divide an integer sum by 7.0 as a decimal of fixed scale.
        {% for w in windows %}
        case
            when count(incident_count) over last_{{ w }}_days = {{ w }}
                then cast(sum(incident_count) over last_{{ w }}_days as double) / {{ w }}.0
        end as roll_mean_{{ w }},
        case
            when count(incident_count) over last_{{ w }}_days = {{ w }}
                then sqrt(
                        (
                            {{ w }} * sum(cast(incident_count as bigint) * incident_count)
                                over last_{{ w }}_days
                            - power(sum(cast(incident_count as bigint)) over last_{{ w }}_days, 2)
                        ) / {{ w * (w - 1) }}.0
                    )
        end as roll_std_{{ w }},
        {% endfor %}
        is_filled
    from counts
    window
        {% for w in windows %}
        last_{{ w }}_days as (
            partition by series_id order by date
            rows between {{ w }} preceding and 1 preceding
        ),
        {% endfor %}
        by_day as (partition by series_id order by date)

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
        {% for k in lags %}
        windowed.lag_{{ k }},
        {% endfor %}
        {% for w in windows %}
        cast(windowed.roll_mean_{{ w }} as double) as roll_mean_{{ w }},
        cast(windowed.roll_std_{{ w }} as double) as roll_std_{{ w }},
        {% endfor %}
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
