-- Out-of-sample backtest predictions with their actuals, every run kept.
-- From ml.backtest_predictions, typed by its contract (_serving__models.yml).
{{ serving_select(source('ml', 'backtest_predictions')) }}
