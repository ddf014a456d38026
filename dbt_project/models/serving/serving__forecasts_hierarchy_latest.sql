-- The latest run of forecasts_hierarchy per source (macros/serving.sql).
{{ latest_run(ref('serving__forecasts_hierarchy'), partition_by=['source']) }}
