-- The latest run of france_forecasts (largest run_id) (macros/serving.sql).
{{ latest_run(ref('serving__france_forecasts'), partition_by=[]) }}
