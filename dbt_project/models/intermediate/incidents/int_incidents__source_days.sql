{#-
    Each source's range in the marts, and its policies that act there: first_day (first day with
    a kept incident), last_day (last day with one) and last_full_day, the last day daily_counts
    covers, per the mapping's `last_day` policy (sources/README.md):
      partial   (default) the last day is cut mid-day: last_full_day = last_day - 1;
      complete  the extract ends at the end of a day (e.g. a complete month): last_day;
      auto      complete when the last day has at least 3/4 of the median number of kept
                records of the 28 days before it (from the source's first day; a day without a
                record counts 0), else partial; with no day before it, partial.
    last_day_records and median_previous_28 are the figures `auto` compares (also shown for
    the other policies).
-#}

with

policies as (

    {{ source_policies() }}

),

incidents as {{ inline_cte() }} (

    select * from {{ ref('int_incidents__kept') }}

),

ranges as (

    select
        source,
        min(occurred_date) as first_day,
        max(occurred_date) as last_day
    from incidents
    group by source

),

recent_counts as (

    select
        incidents.source,
        incidents.occurred_date as date,
        count(*) as n_records
    from incidents
    inner join ranges
        on
            incidents.source = ranges.source
            and incidents.occurred_date >= {{ add_days('ranges.last_day', -28) }}
    group by incidents.source, incidents.occurred_date

),

spine as (

    {{ date_spine(
        "(select " ~ add_days('min(last_day)', -28) ~ " from ranges)",
        '(select max(last_day) from ranges)'
    ) }}

),

-- the 28 days before each source's last day (not before its first day), 0 when empty
previous_days as (

    select
        ranges.source,
        spine.date_day as date,
        coalesce(recent_counts.n_records, 0) as n_records
    from ranges
    inner join spine
        on
            spine.date_day >= {{ add_days('ranges.last_day', -28) }}
            and ranges.first_day <= spine.date_day
            and ranges.last_day > spine.date_day
    left join recent_counts
        on
            ranges.source = recent_counts.source
            and spine.date_day = recent_counts.date

),

previous_median as (

    select
        source,
        {{ median('n_records') }} as median_previous_28,
        -- `auto`: the least number of records of a complete last day
        0.75 * {{ median('n_records') }} as threshold
    from previous_days
    group by source

),

judged as (

    select
        ranges.source,
        ranges.first_day,
        ranges.last_day,
        coalesce(policies.last_day, 'partial') as last_day_policy,
        coalesce(policies.orphan_reversals, 'drop') as orphan_reversals,
        coalesce(last_counts.n_records, 0) as last_day_records,
        previous_median.median_previous_28,
        case coalesce(policies.last_day, 'partial')
            when 'complete' then true
            when 'auto' then coalesce(last_counts.n_records >= previous_median.threshold, false)
            else false
        end as last_day_complete
    from ranges
    left join policies
        on ranges.source = policies.source
    left join recent_counts as last_counts
        on
            ranges.source = last_counts.source
            and ranges.last_day = last_counts.date
    left join previous_median
        on ranges.source = previous_median.source

),

final as (

    select
        source,
        first_day,
        last_day,
        case
            when last_day_complete then last_day
            else {{ add_days('last_day', -1) }}
        end as last_full_day,
        last_day_policy,
        last_day_complete,
        cast(last_day_records as bigint) as last_day_records,
        cast(median_previous_28 as double) as median_previous_28,
        orphan_reversals
    from judged

)

select * from final
