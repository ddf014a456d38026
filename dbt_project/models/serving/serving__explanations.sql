-- Forecast explanations: the top drivers of each forecast row, every run kept.
-- From ml.forecast_explanations, typed by its contract (_serving__models.yml).
{{ serving_select(source('ml', 'forecast_explanations')) }}
