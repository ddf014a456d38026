-- The latest run of backtest_predictions per source (macros/serving.sql).
{{ latest_run(ref('serving__backtest_predictions'), partition_by=['source']) }}
