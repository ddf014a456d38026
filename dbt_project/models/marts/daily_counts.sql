{#-
    Every selected series (int_series) × every day from its source's first day to the source's
    last full day (last day with data minus one: extracts are cut mid-day), zero-filled.
    incident_count sums incident_count (so -1 reversals are netted); is_filled is true where no
    incident record existed that day.

    Incremental (delete+insert on series_id, date). Per source, the days to rebuild start at
    `from_day`: the source's first day when the source is new, its first day moved or its set
    of series changed; otherwise the first day whose fingerprint (sum of hash(series_id,
    incident_count) over the recorded series-days) differs from the table's, or the day after
    the table's last day, whichever is earlier. Rows outside a source's new range or of a series
    no longer selected are deleted by the post-hook. The result equals a full refresh
    (tests/test_reliability_incremental.py); `dbt build --full-refresh` rebuilds everything.
-#}

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['series_id', 'date'],
    on_schema_change='fail',
    post_hook=[
        """
        delete from {{ this }}
        where series_id not in (select series_id from {{ ref('int_series') }})
        """,
        """
        delete from {{ this }} as t
        where t.source not in (select distinct source from {{ ref('int_incidents') }})
        """,
        """
        delete from {{ this }} as t
        using (
            select
                source,
                min(occurred_date) as first_day,
                max(occurred_date) - 1 as last_full_day
            from {{ ref('int_incidents') }}
            group by source
        ) as r
        where
            t.source = r.source
            and (t.date < r.first_day or t.date > r.last_full_day)
        """
    ]
) }}

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

{% if is_incremental() -%}

recorded as (

    select
        series.source,
        series.series_id,
        daily.date,
        cast(daily.incident_count as integer) as incident_count
    from daily
    inner join series
        on
            daily.source = series.source
            and daily.area = series.area
            and daily.category = series.category
    inner join source_days
        on
            daily.source = source_days.source
            and daily.date <= source_days.last_full_day

),

new_prints as (

    select
        source,
        date,
        sum(hash(series_id, incident_count)) as print
    from recorded
    group by source, date

),

old_prints as (

    select
        source,
        date,
        sum(hash(series_id, incident_count)) as print
    from {{ this }}
    where not is_filled
    group by source, date

),

changed_days as (

    select
        coalesce(new_prints.source, old_prints.source) as source,
        min(coalesce(new_prints.date, old_prints.date)) as first_changed_day
    from new_prints
    full outer join old_prints
        on
            new_prints.source = old_prints.source
            and new_prints.date = old_prints.date
    where new_prints.print is distinct from old_prints.print
    group by coalesce(new_prints.source, old_prints.source)

),

old_ranges as (

    select
        source,
        min(date) as first_day,
        max(date) as last_day
    from {{ this }}
    group by source

),

series_changes as (

    select distinct source
    from (
        (
            select
                source,
                series_id
            from series
            except
            select distinct
                source,
                series_id
            from {{ this }}
        )
        union all
        (
            select distinct
                source,
                series_id
            from {{ this }}
            except
            select
                source,
                series_id
            from series
        )
    )

),

rebuild as (

    select
        source_days.source,
        case
            when
                old_ranges.source is null
                or old_ranges.first_day != source_days.first_day
                or series_changes.source is not null
                then source_days.first_day
            else
                least(
                    coalesce(changed_days.first_changed_day, old_ranges.last_day + 1),
                    old_ranges.last_day + 1
                )
        end as from_day
    from source_days
    left join old_ranges
        on source_days.source = old_ranges.source
    left join series_changes
        on source_days.source = series_changes.source
    left join changed_days
        on source_days.source = changed_days.source

),

{%- else %}

rebuild as (

    select
        source,
        first_day as from_day
    from source_days

),

{%- endif %}

spine as (

    {{ date_spine(
        '(select min(from_day) from rebuild)',
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
    inner join rebuild
        on series.source = rebuild.source
    inner join spine
        on
            spine.date_day between source_days.first_day and source_days.last_full_day
            and rebuild.from_day <= spine.date_day

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
