-- The latest run of france_backtest_metrics (largest run_id) (macros/serving.sql).
{{ latest_run(ref('serving__france_backtest_metrics'), partition_by=[]) }}
