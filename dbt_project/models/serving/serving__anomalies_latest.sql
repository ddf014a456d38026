-- The latest run of anomalies per source (macros/serving.sql).
{{ latest_run(ref('serving__anomalies'), partition_by=['source']) }}
