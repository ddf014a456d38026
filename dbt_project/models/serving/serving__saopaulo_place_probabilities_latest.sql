-- The latest run of saopaulo_place_probabilities (largest run_id) (macros/serving.sql).
{{ latest_run(ref('serving__saopaulo_place_probabilities'), partition_by=[]) }}
