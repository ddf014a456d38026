{#-
    What cleaning does to each source, in long form: one row per (source, reason), where
    reason is 'kept' for the rows that reach int_incidents, or the drop_reason of the rows
    removed. The standard reasons are always listed (0 rows when nothing was dropped for them);
    a mapping filter (e.g. test_record) is listed when it matched. rows_read, rows_kept and
    rows_dropped repeat the per-source totals on every row; rows_read = rows_kept + rows_dropped.

    Two later steps also leave kept rows out of the marts (daily_counts); they are counted in
    per-source columns, also repeated on every row, so that rows_kept = rows_in_marts +
    rows_partial_last_day + rows_series_not_selected (each kept row in exactly one, checked in
    this order):
      rows_partial_last_day     on the source's last day with data: the extract is cut
                                mid-day, daily_counts ends at the day before;
      rows_series_not_selected  of a (source, area, category) series not in int_series (dbt
                                vars series_preset, areas, categories);
      rows_in_marts             the rest: their net incident_count is net_incidents_in_marts,
                                the source's sum of daily_counts.incident_count.
    The reconciliation against raw.incidents, int_incidents and daily_counts is tested by
    assert_cleaning_counts_add_up.
-#}

with

incidents as (

    select * from {{ ref('stg_police__incidents') }}

),

kept_incidents as (

    select * from {{ ref('int_incidents') }}

),

series as (

    select * from {{ ref('int_series') }}

),

standard_reasons as (

    select 'kept' as reason
    union all
    select 'unparseable_timestamp' as reason
    union all
    select 'implausible_date' as reason
    union all
    select 'missing_area' as reason
    union all
    select 'missing_category' as reason
    union all
    select 'duplicate' as reason

),

observed as (

    select
        source,
        coalesce(drop_reason, 'kept') as reason,
        count(*) as n_rows,
        sum(incident_count) as n_incidents
    from incidents
    group by source, coalesce(drop_reason, 'kept')

),

source_list as (

    select distinct source from incidents

),

reasons as (

    select
        source_list.source,
        standard_reasons.reason
    from source_list
    cross join standard_reasons

    union

    select
        source,
        reason
    from observed

),

source_last_days as (

    select
        source,
        max(occurred_date) as last_day
    from kept_incidents
    group by source

),

-- where each kept row ends up: counted once, the partial last day first (whatever the series)
kept_outcomes as (

    select
        kept_incidents.source,
        kept_incidents.incident_count,
        case
            when kept_incidents.occurred_date = source_last_days.last_day
                then 'partial_last_day'
            when series.series_id is null then 'series_not_selected'
            else 'in_marts'
        end as outcome
    from kept_incidents
    inner join source_last_days
        on kept_incidents.source = source_last_days.source
    left join series
        on
            kept_incidents.source = series.source
            and kept_incidents.area = series.area
            and kept_incidents.category = series.category

),

marts_totals as (

    select
        source,
        count(*) filter (where outcome = 'in_marts') as rows_in_marts,
        count(*) filter (where outcome = 'partial_last_day') as rows_partial_last_day,
        count(*) filter (where outcome = 'series_not_selected') as rows_series_not_selected,
        sum(incident_count) filter (where outcome = 'in_marts') as net_incidents_in_marts
    from kept_outcomes
    group by source

),

counted as (

    select
        reasons.source,
        reasons.reason,
        case when reasons.reason = 'kept' then 'kept' else 'dropped' end as status,
        cast(coalesce(observed.n_rows, 0) as bigint) as n_rows,
        cast(coalesce(observed.n_incidents, 0) as bigint) as net_incident_count
    from reasons
    left join observed
        on
            reasons.source = observed.source
            and reasons.reason = observed.reason

),

final as (

    select
        counted.source,
        counted.status,
        counted.reason,
        counted.n_rows as rows,
        counted.net_incident_count,
        sum(counted.n_rows) over (partition by counted.source) as rows_read,
        sum(case when counted.status = 'kept' then counted.n_rows else 0 end)
            over (partition by counted.source) as rows_kept,
        sum(case when counted.status = 'dropped' then counted.n_rows else 0 end)
            over (partition by counted.source) as rows_dropped,
        round(
            counted.n_rows / nullif(sum(counted.n_rows) over (partition by counted.source), 0),
            6
        ) as share_of_read,
        cast(coalesce(marts_totals.rows_in_marts, 0) as bigint) as rows_in_marts,
        cast(coalesce(marts_totals.rows_partial_last_day, 0) as bigint)
            as rows_partial_last_day,
        cast(coalesce(marts_totals.rows_series_not_selected, 0) as bigint)
            as rows_series_not_selected,
        cast(coalesce(marts_totals.net_incidents_in_marts, 0) as bigint)
            as net_incidents_in_marts
    from counted
    left join marts_totals
        on counted.source = marts_totals.source

)

select * from final
order by source asc, status desc, reason asc
