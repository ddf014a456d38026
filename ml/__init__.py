"""crimecast forecasting library (plain Python: no Dagster imports).

Long frames like mlforecast: ``series_id, ds, y`` plus the ``marts.daily_features`` columns.
"""

from ml.backtest import backtest_one_step, fit_frame
from ml.features import FEATURE_COLUMNS, build_features, from_mart, holidays_from_seed
from ml.forecast import forecast_recursive
from ml.metrics import mae, noise_floor_mae, poisson_median, rmse, score
from ml.models import (
    Mean7,
    Mean28,
    SeasonalNaive7,
    XGBCountModel,
    default_models,
    load_model,
)
from ml.runs import (
    backtest_metrics_table,
    backtest_predictions_table,
    forecasts_table,
    metrics_for,
    model_run_record,
    train_window,
)

__all__ = [
    "FEATURE_COLUMNS",
    "Mean7",
    "Mean28",
    "SeasonalNaive7",
    "XGBCountModel",
    "backtest_metrics_table",
    "backtest_one_step",
    "backtest_predictions_table",
    "build_features",
    "default_models",
    "fit_frame",
    "forecast_recursive",
    "forecasts_table",
    "from_mart",
    "holidays_from_seed",
    "load_model",
    "mae",
    "metrics_for",
    "model_run_record",
    "noise_floor_mae",
    "poisson_median",
    "rmse",
    "score",
    "train_window",
]
