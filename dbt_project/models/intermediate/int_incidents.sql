{#-
    The canonical incidents shared by all sources: the staging rows that are kept
    (drop_reason is NULL). Reversal rows (incident_count = -1) stay in; summing nets them.
    A view: a filter over the staging table, cheaper than copying every kept row.
-#}

{{ config(materialized='view') }}

with

incidents as (

    select * from {{ ref('stg_police__incidents') }}
    where drop_reason is null

),

final as (

    select
        source,
        incident_id,
        area,
        category,
        occurred_at,
        occurred_date,
        incident_count
    from incidents

)

select * from final
