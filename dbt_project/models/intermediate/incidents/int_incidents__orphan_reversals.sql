{#-
    Reversal records (incident_count < 0) with no original to reverse among the kept rows, per
    the source's `orphan_reversals` policy (sources/README.md):
      drop  (default) int_incidents__kept leaves these rows out; incidents_data_quality counts them
            under reason `orphan_reversal`;
      net   the rows stay in int_incidents__kept and net against their series-day; daily_counts
            clamps a day that would go negative at 0 (counted in incidents_data_quality).
    The original of a reversal is a kept record (incident_count > 0) of the same source with
    the same incident_id (both may be NULL), occurred_at, area and category. The reversals of
    one such key are matched against the sum of its records in load order (loaded_at, then
    file sha256, then row): those whose running total exceeds it are orphans. A kept reversal
    therefore always has its records, and no series-day of a `drop` source goes negative.
    Only the few reversal rows are matched: the records are read for their keys alone.
-#}

with

policies as (

    {{ source_policies() }}

),

kept as {{ inline_cte() }} (

    select * from {{ ref('int_incidents__checked') }}
    where drop_reason is null

),

reversals as (

    select
        source,
        incident_id,
        occurred_at,
        occurred_date,
        area,
        category,
        incident_count,
        source_file,
        source_sha256,
        source_row,
        loaded_at
    from kept
    where incident_count < 0

),

reversal_times as (

    select distinct
        source,
        occurred_at
    from reversals

),

originals as (

    select
        kept.source,
        kept.incident_id,
        kept.occurred_at,
        kept.area,
        kept.category,
        sum(kept.incident_count) as n_original
    from kept
    inner join reversal_times
        on
            kept.source = reversal_times.source
            and kept.occurred_at = reversal_times.occurred_at
    where kept.incident_count > 0
    group by kept.source, kept.incident_id, kept.occurred_at, kept.area, kept.category

),

matched as (

    select
        reversals.*,
        coalesce(originals.n_original, 0) as n_original,
        sum(-reversals.incident_count) over (
            partition by
                reversals.source,
                reversals.incident_id,
                reversals.occurred_at,
                reversals.area,
                reversals.category
            order by
                reversals.loaded_at asc,
                reversals.source_sha256 asc,
                reversals.source_row asc
            rows between unbounded preceding and current row
        ) as n_reversed
    from reversals
    left join originals
        on
            reversals.source = originals.source
            and reversals.incident_id is not distinct from originals.incident_id
            and reversals.occurred_at = originals.occurred_at
            and reversals.area = originals.area
            and reversals.category = originals.category

),

final as (

    select
        matched.source,
        matched.source_file,
        matched.source_sha256,
        matched.source_row,
        matched.incident_id,
        matched.occurred_at,
        matched.occurred_date,
        matched.area,
        matched.category,
        matched.incident_count,
        cast(matched.n_original as integer) as n_original,
        coalesce(policies.orphan_reversals, 'drop') as orphan_reversals
    from matched
    left join policies
        on matched.source = policies.source
    where matched.n_reversed > matched.n_original

)

select * from final
