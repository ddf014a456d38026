"""crimecast forecasting library (plain Python: no Dagster imports).

Long frames like mlforecast: ``series_id, ds, y`` plus the ``marts.daily_features`` columns.
The names below are loaded on first use (PEP 562), so importing one light module of the
package (``ml.project``, ``ml.tables``) does not import scikit-learn and XGBoost.
"""

from __future__ import annotations

import importlib

#: public name -> the module that defines it
_EXPORTS = {
    "BacktestPlan": "ml.backtest",
    "FEATURE_COLUMNS": "ml.features",
    "HistGBCountModel": "ml.models",
    "Mean28": "ml.models",
    "Mean7": "ml.models",
    "PoissonGLMModel": "ml.models",
    "RandomForestCountModel": "ml.models",
    "RunConfig": "ml.pipeline",
    "SeasonalNaive7": "ml.models",
    "XGBCountModel": "ml.models",
    "add_ensemble": "ml.champion",
    "add_intervals": "ml.intervals",
    "aggregate": "ml.hierarchy",
    "build_features": "ml.features",
    "calibrate": "ml.intervals",
    "champion_rows": "ml.champion",
    "coverage": "ml.intervals",
    "fit_frame": "ml.backtest",
    "forecast_direct": "ml.forecast",
    "from_mart": "ml.features",
    "holidays_from_seed": "ml.features",
    "horizon_features": "ml.features",
    "load_model": "ml.models",
    "mae": "ml.metrics",
    "model_run_record": "ml.runs",
    "noise_floor_mae": "ml.metrics",
    "poisson_median": "ml.metrics",
    "rmse": "ml.metrics",
    "rolling_backtest": "ml.backtest",
    "run_source": "ml.pipeline",
    "score": "ml.metrics",
    "select_champions": "ml.champion",
    "train_window": "ml.runs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ml' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
