-- Share of backtest days inside the 80 / 95 % bands, per run, source, split, hierarchy level,
-- model and horizon (the dashboards say it in words).
-- From ml.interval_coverage, typed by its contract (_serving__models.yml).
{{ serving_select(source('ml', 'interval_coverage')) }}
