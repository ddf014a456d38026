-- Operational daily forecasts of the incident sources, every run (vintage) kept; forecasts_latest
-- holds the latest run per source.
-- From ml.forecasts, typed by its contract (_serving__models.yml).
{{ serving_select(source('ml', 'forecasts')) }}
