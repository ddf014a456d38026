-- Backtest scores per run, source, split, cutoff, model and horizon, with the Poisson
-- reference (model-based, not a floor).
-- From ml.backtest_metrics, typed by its contract (_serving__models.yml).
{{ serving_select(source('ml', 'backtest_metrics')) }}
