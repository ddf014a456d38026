-- The latest run of source_status per source (macros/serving.sql).
{{ latest_run(ref('serving__source_status'), partition_by=['source']) }}
