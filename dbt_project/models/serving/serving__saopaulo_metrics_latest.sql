-- The latest run of saopaulo_metrics (largest run_id) (macros/serving.sql).
{{ latest_run(ref('serving__saopaulo_metrics'), partition_by=[]) }}
