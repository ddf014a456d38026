{#-
    The canonical incidents shared by all sources: the staging rows that are kept
    (drop_reason is NULL), less the orphan reversals of the sources whose policy drops them
    (int_incidents__orphan_reversals). The other reversal rows (incident_count = -1) stay in; summing
    nets them. A view: a filter over the staging table, cheaper than copying every kept row.
-#}

{{ config(materialized='view') }}

with

incidents as (

    select * from {{ ref('int_incidents__checked') }}
    where drop_reason is null

),

dropped_orphans as (

    select
        source,
        source_file,
        source_row
    from {{ ref('int_incidents__orphan_reversals') }}
    where orphan_reversals = 'drop'

),

final as (

    select
        incidents.source,
        incidents.incident_id,
        incidents.area,
        incidents.category,
        incidents.occurred_at,
        incidents.occurred_date,
        incidents.incident_count,
        incidents.source_file,
        incidents.source_row,
        incidents.latitude,
        incidents.longitude
    from incidents
    left join dropped_orphans
        on
            incidents.source = dropped_orphans.source
            and incidents.source_file = dropped_orphans.source_file
            and incidents.source_row = dropped_orphans.source_row
    where dropped_orphans.source is null

)

select * from final
