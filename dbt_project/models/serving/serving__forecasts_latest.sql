-- The latest run of forecasts per source (macros/serving.sql).
{{ latest_run(ref('serving__forecasts'), partition_by=['source']) }}
