-- Nothing is dropped silently: per source, the rows read from raw.incidents equal the rows kept
-- plus the rows dropped for every reason, in data_quality__cleaning and against the models.
{{ config(meta={'dagster': {'ref': {'name': 'data_quality__cleaning'}}}) }}

with

raw_rows as (

    select
        source,
        count(*) as rows_in_raw
    from {{ source('raw', 'incidents') }}
    group by source

),

kept_rows as (

    select
        source,
        count(*) as rows_in_int_incidents
    from {{ ref('int_incidents') }}
    group by source

),

cleaning as (

    select
        source,
        max(rows_read) as rows_read,
        max(rows_kept) as rows_kept,
        max(rows_dropped) as rows_dropped,
        sum(case when status = 'kept' then rows else 0 end) as sum_kept,
        sum(case when status = 'dropped' then rows else 0 end) as sum_dropped,
        count(distinct rows_read) as n_rows_read_values
    from {{ ref('data_quality__cleaning') }}
    group by source

)

select
    raw_rows.source,
    raw_rows.rows_in_raw,
    kept_rows.rows_in_int_incidents,
    cleaning.rows_read,
    cleaning.rows_kept,
    cleaning.rows_dropped,
    cleaning.sum_kept,
    cleaning.sum_dropped
from raw_rows
left join kept_rows
    on raw_rows.source = kept_rows.source
left join cleaning
    on raw_rows.source = cleaning.source
where
    cleaning.source is null
    or cleaning.n_rows_read_values != 1
    or cleaning.rows_read != raw_rows.rows_in_raw
    or cleaning.rows_read != cleaning.rows_kept + cleaning.rows_dropped
    or cleaning.rows_kept != cleaning.sum_kept
    or cleaning.rows_dropped != cleaning.sum_dropped
    or cleaning.rows_kept != coalesce(kept_rows.rows_in_int_incidents, 0)
