-- France: backtest scores of the annual models per run, dataset, model and horizon.
-- From ml.france_backtest_metrics, typed by its contract (_serving__models.yml).
{{ serving_select(source('ml', 'france_backtest_metrics')) }}
