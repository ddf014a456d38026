{#-
    Every selected series (int_series) × every day from its source's first day to the source's
    last full day (last day with data minus one: extracts are cut mid-day), zero-filled.
    incident_count sums incident_count (so -1 reversals are netted); is_filled is true where no
    incident record existed that day.
-#}

with

incidents as (

    select * from {{ ref('int_incidents') }}

),

series as (

    select * from {{ ref('int_series') }}

),

source_days as (

    select
        source,
        min(occurred_date) as first_day,
        {{ add_days('max(occurred_date)', -1) }} as last_full_day
    from incidents
    group by source

),

spine as (

    {{ date_spine(
        '(select min(first_day) from source_days)',
        '(select max(last_full_day) from source_days)'
    ) }}

),

series_days as (

    select
        series.source,
        series.series_id,
        series.area,
        series.category,
        spine.date_day as date
    from series
    inner join source_days
        on series.source = source_days.source
    inner join spine
        on spine.date_day between source_days.first_day and source_days.last_full_day

),

daily as (

    select
        source,
        area,
        category,
        occurred_date as date,
        sum(incident_count) as incident_count
    from incidents
    group by source, area, category, occurred_date

),

final as (

    select
        series_days.source,
        series_days.series_id,
        series_days.area,
        series_days.category,
        series_days.date,
        cast(coalesce(daily.incident_count, 0) as integer) as incident_count,
        daily.date is null as is_filled
    from series_days
    left join daily
        on
            series_days.source = daily.source
            and series_days.area = daily.area
            and series_days.category = daily.category
            and series_days.date = daily.date

)

select * from final
