{#-
    What cleaning does to each source, in long form: one row per (source, reason), where
    reason is 'kept' for the rows that reach int_incidents, or the drop_reason of the rows
    removed. The standard reasons are always listed (0 rows when nothing was dropped for them);
    a mapping filter (e.g. test_record) is listed when it matched. rows_read, rows_kept and
    rows_dropped repeat the per-source totals on every row; rows_read = rows_kept + rows_dropped
    (tested by assert_cleaning_counts_add_up).
-#}

with

incidents as (

    select * from {{ ref('stg_police__incidents') }}

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
        source,
        status,
        reason,
        n_rows as rows,
        net_incident_count,
        sum(n_rows) over (partition by source) as rows_read,
        sum(case when status = 'kept' then n_rows else 0 end)
            over (partition by source) as rows_kept,
        sum(case when status = 'dropped' then n_rows else 0 end)
            over (partition by source) as rows_dropped,
        round(n_rows / nullif(sum(n_rows) over (partition by source), 0), 6) as share_of_read
    from counted

)

select * from final
order by source asc, status desc, reason asc
