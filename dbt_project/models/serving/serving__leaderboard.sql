-- Pooled ranking of the models per run, source, split and horizon.
-- From ml.leaderboard, typed by its contract (_serving__models.yml).
{{ serving_select(source('ml', 'leaderboard')) }}
