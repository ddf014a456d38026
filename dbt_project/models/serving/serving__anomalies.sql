-- Backtest days whose recorded count fell outside the 95 % band of the one-day-ahead forecast, at
-- every hierarchy level; every run kept.
-- From ml.anomalies, typed by its contract (_serving__models.yml).
{{ serving_select(source('ml', 'anomalies')) }}
