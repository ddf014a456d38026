"""crimecast forecasting library (plain Python: no Dagster imports).

Long frames like mlforecast: ``series_id, ds, y`` plus the ``marts.daily_features`` columns.
"""

from ml.backtest import BacktestPlan, fit_frame, rolling_backtest
from ml.champion import add_ensemble, champion_rows, select_champions
from ml.features import (
    FEATURE_COLUMNS,
    build_features,
    from_mart,
    holidays_from_seed,
    horizon_features,
)
from ml.forecast import forecast_direct
from ml.hierarchy import aggregate
from ml.intervals import add_intervals, calibrate, coverage
from ml.metrics import mae, noise_floor_mae, poisson_median, rmse, score
from ml.models import (
    HistGBCountModel,
    Mean7,
    Mean28,
    PoissonGLMModel,
    RandomForestCountModel,
    SeasonalNaive7,
    XGBCountModel,
    load_model,
)
from ml.pipeline import RunConfig, run_source
from ml.runs import model_run_record, train_window

__all__ = [
    "BacktestPlan",
    "FEATURE_COLUMNS",
    "HistGBCountModel",
    "PoissonGLMModel",
    "RandomForestCountModel",
    "RunConfig",
    "add_ensemble",
    "add_intervals",
    "aggregate",
    "calibrate",
    "champion_rows",
    "coverage",
    "forecast_direct",
    "horizon_features",
    "rolling_backtest",
    "run_source",
    "select_champions",
    "Mean7",
    "Mean28",
    "SeasonalNaive7",
    "XGBCountModel",
    "build_features",
    "fit_frame",
    "from_mart",
    "holidays_from_seed",
    "load_model",
    "mae",
    "model_run_record",
    "noise_floor_mae",
    "poisson_median",
    "rmse",
    "score",
    "train_window",
]
