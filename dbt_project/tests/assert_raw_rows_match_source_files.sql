{{ config(severity='warn') }}
-- The loader's per-file row counts (raw.source_files.rows) match the rows it wrote to
-- raw.incidents. A warning, not an error: it checks the loader, not the cleaning.
with

incidents as (

    select
        source,
        source_file,
        count(*) as rows_in_incidents
    from {{ source('raw', 'incidents') }}
    group by source, source_file

),

files as (

    select
        source,
        source_file,
        sum(rows) as rows_in_source_files
    from {{ source('raw', 'source_files') }}
    group by source, source_file

)

select
    coalesce(incidents.source, files.source) as source,
    coalesce(incidents.source_file, files.source_file) as source_file,
    incidents.rows_in_incidents,
    files.rows_in_source_files
from incidents
full outer join files
    on
        incidents.source = files.source
        and incidents.source_file = files.source_file
where coalesce(incidents.rows_in_incidents, 0) != coalesce(files.rows_in_source_files, 0)
