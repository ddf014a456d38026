-- The latest run of backtest_metrics per source (macros/serving.sql).
{{ latest_run(ref('serving__backtest_metrics'), partition_by=['source']) }}
