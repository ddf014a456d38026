-- France: annual forecasts of the rate to 2030 with intervals, every run kept
-- (france_forecasts_latest: the latest run).
-- From ml.france_forecasts, typed by its contract (_serving__models.yml).
{{ serving_select(source('ml', 'france_forecasts')) }}
