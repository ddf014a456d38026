-- The latest run of interval_coverage per source (macros/serving.sql).
{{ latest_run(ref('serving__interval_coverage'), partition_by=['source']) }}
