{#- saopaulo_data_quality accounts for every raw row, and its 'kept' row equals the mart. -#}

with

quality as (

    select
        sum(rows) as all_rows,
        sum(case when outcome = 'kept' then rows else 0 end) as kept_rows
    from {{ ref('saopaulo_data_quality') }}

),

raw_rows as (

    select count(*) as n from {{ source('raw', 'saopaulo_phone_thefts') }}

),

mart_rows as (

    select count(*) as n from {{ ref('saopaulo_phone_theft_records') }}

)

select
    quality.all_rows,
    quality.kept_rows,
    raw_rows.n as raw_n,
    mart_rows.n as mart_n
from quality
cross join raw_rows
cross join mart_rows
where
    coalesce(quality.all_rows, 0) != raw_rows.n
    or coalesce(quality.kept_rows, 0) != mart_rows.n
