{#-
    What cleaning does to each source, in long form: one row per (source, reason), where
    reason is 'kept' for the rows that reach int_incidents__kept, or the drop_reason of the rows
    removed (staging), or 'orphan_reversal' for the reversals int_incidents__kept leaves out
    (int_incidents__orphan_reversals, `orphan_reversals: drop`). The standard reasons are always listed
    (0 rows when nothing was dropped for them);
    a mapping filter (e.g. test_record) is listed when it matched. rows_read, rows_kept and
    rows_dropped repeat the per-source totals on every row; rows_read = rows_kept + rows_dropped.

    Two later steps also leave kept rows out of the marts (daily_counts); they are counted in
    per-source columns, also repeated on every row, so that rows_kept = rows_in_marts +
    rows_partial_last_day + rows_series_not_selected (each kept row in exactly one, checked in
    this order):
      rows_partial_last_day     on the source's last day with data when it is judged
                                partial (int_incidents__source_days, the mapping's `last_day`):
                                daily_counts ends at the day before;
      rows_series_not_selected  of a (source, area, category) series not in int_incidents__series (dbt
                                vars series_preset, areas, categories);
      rows_in_marts             the rest: their net incident_count, plus clamped_incidents,
                                is net_incidents_in_marts (= the sum of
                                daily_counts.incident_count).
    clamped_days / clamped_incidents: the series-days of the marts that a source with
    `orphan_reversals: net` clamped at 0, and the incidents that added (the negative net
    turned to 0). last_day_complete: whether daily_counts includes the last day with data.
    Coordinates (per source, over the rows read, whatever their reason): rows_located (both
    coordinates kept), rows_coordinates_implausible (published but set NULL: out of the
    mapping's range, 0 / 0, not a number, or only one of the two); the rest had none.
    This model does not read daily_counts (it is built, and shows what cleaning did, even when
    a test of daily_counts fails). That the marts hold exactly those rows is tested:
    assert_cleaning_counts_add_up (rows_in_marts = the sum of daily_counts.n_records,
    net_incidents_in_marts = the sum of daily_counts.incident_count, per source) and
    assert_daily_counts_match_incidents (row by row, on the days a build rewrote).
-#}

with

staged as {{ inline_cte() }} (

    select * from {{ ref('int_incidents__checked') }}

),

dropped_orphans as (

    select
        source,
        source_file,
        source_row
    from {{ ref('int_incidents__orphan_reversals') }}
    where orphan_reversals = 'drop'

),

-- every raw row with its outcome: a staging drop_reason, a dropped orphan reversal, or kept
incidents as (

    select
        staged.source,
        staged.incident_count,
        coalesce(
            staged.drop_reason,
            case when dropped_orphans.source is not null then 'orphan_reversal' end
        ) as drop_reason
    from staged
    left join dropped_orphans
        on
            staged.source = dropped_orphans.source
            and staged.source_file = dropped_orphans.source_file
            and staged.source_row = dropped_orphans.source_row

),

source_days as (

    select * from {{ ref('int_incidents__source_days') }}

),

coordinates as (

    select
        source,
        sum(case when coordinates_status = 'located' then 1 else 0 end) as rows_located,
        sum(case when coordinates_status = 'implausible' then 1 else 0 end)
            as rows_coordinates_implausible
    from staged
    group by source

),

kept_incidents as {{ inline_cte() }} (

    select * from {{ ref('int_incidents__kept') }}

),

series as (

    select * from {{ ref('int_incidents__series') }}

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
    union all
    select 'orphan_reversal' as reason

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

-- kept rows per series and whether they fall on the last day: one pass over the incidents,
-- then a join of those few rows to the selected series
kept_by_series as (

    select
        kept_incidents.source,
        kept_incidents.area,
        kept_incidents.category,
        kept_incidents.occurred_date > source_days.last_full_day as on_last_day,
        count(*) as n_rows,
        sum(kept_incidents.incident_count) as net_incidents
    from kept_incidents
    inner join source_days
        on kept_incidents.source = source_days.source
    group by
        kept_incidents.source,
        kept_incidents.area,
        kept_incidents.category,
        kept_incidents.occurred_date > source_days.last_full_day

),

-- where each kept row ends up: counted once, the partial last day first (whatever the series)
marts_totals as (

    select
        kept_by_series.source,
        sum(
            case
                when not kept_by_series.on_last_day and series.series_id is not null
                    then kept_by_series.n_rows
            end
        ) as rows_in_marts,
        sum(
            case when kept_by_series.on_last_day then kept_by_series.n_rows end
        ) as rows_partial_last_day,
        sum(
            case
                when not kept_by_series.on_last_day and series.series_id is null
                    then kept_by_series.n_rows
            end
        ) as rows_series_not_selected,
        sum(
            case
                when not kept_by_series.on_last_day and series.series_id is not null
                    then kept_by_series.net_incidents
            end
        ) as net_incidents_in_marts
    from kept_by_series
    left join series
        on
            kept_by_series.source = series.source
            and kept_by_series.area = series.area
            and kept_by_series.category = series.category
    group by kept_by_series.source

),

-- orphan_reversals: net: the series-days of the marts (selected series, up to the last full
-- day) whose net is negative; daily_counts clamps them at 0
clamped as (

    select
        negative_days.source,
        count(*) as clamped_days,
        -sum(negative_days.net_incidents) as clamped_incidents
    from (
        select
            kept_incidents.source,
            kept_incidents.area,
            kept_incidents.category,
            kept_incidents.occurred_date,
            sum(kept_incidents.incident_count) as net_incidents
        from kept_incidents
        inner join source_days
            on kept_incidents.source = source_days.source
        where
            source_days.orphan_reversals = 'net'
            and kept_incidents.occurred_date <= source_days.last_full_day
        group by
            kept_incidents.source,
            kept_incidents.area,
            kept_incidents.category,
            kept_incidents.occurred_date
        having sum(kept_incidents.incident_count) < 0
    ) as negative_days
    inner join series
        on
            negative_days.source = series.source
            and negative_days.area = series.area
            and negative_days.category = series.category
    group by negative_days.source

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
            cast(counted.n_rows as double)
            / nullif(sum(counted.n_rows) over (partition by counted.source), 0),
            6
        ) as share_of_read,
        cast(coalesce(marts_totals.rows_in_marts, 0) as bigint) as rows_in_marts,
        cast(coalesce(marts_totals.rows_partial_last_day, 0) as bigint)
            as rows_partial_last_day,
        cast(coalesce(marts_totals.rows_series_not_selected, 0) as bigint)
            as rows_series_not_selected,
        cast(
            coalesce(marts_totals.net_incidents_in_marts, 0)
            + coalesce(clamped.clamped_incidents, 0) as bigint
        ) as net_incidents_in_marts,
        cast(coalesce(clamped.clamped_days, 0) as bigint) as clamped_days,
        cast(coalesce(clamped.clamped_incidents, 0) as bigint) as clamped_incidents,
        coalesce(source_days.last_day_complete, false) as last_day_complete,
        cast(coalesce(coordinates.rows_located, 0) as bigint) as rows_located,
        cast(coalesce(coordinates.rows_coordinates_implausible, 0) as bigint)
            as rows_coordinates_implausible
    from counted
    left join marts_totals
        on counted.source = marts_totals.source
    left join clamped
        on counted.source = clamped.source
    left join source_days
        on counted.source = source_days.source
    left join coordinates
        on counted.source = coordinates.source

)

select * from final
order by source asc, status desc, reason asc
