-- The latest run of explanations per source (macros/serving.sql).
{{ latest_run(ref('serving__explanations'), partition_by=['source']) }}
