-- Daily recorded incidents per series (zero-filled).
-- From marts.daily_counts, typed by its contract (_serving__models.yml).
{{ serving_select(ref('daily_counts')) }}
