"""Peer forecasters in the benchmark: the open-source tools a forecaster would pick instead of
crimecast, run on the same series, test cutoff, horizons and target days as crimecast's own
rolling backtest (docs/forecasting.md, "Backtests"), so their rows sit beside ours.

- statsforecast: AutoETS (season 7), AutoTheta (season 7), SeasonalNaive (7), WindowAverage (28);
- mlforecast + LightGBM (Poisson objective): lags, rolling means and calendar features, the
  recursive strategy; its configuration is chosen on a validation window before the cutoff.

The protocol is crimecast's test split: every model is fitted once on the days before the test
cutoff and predicts each target day ``d`` from what was known at the origin ``d − h`` (no refit
inside the test window; statsforecast and mlforecast ``cross_validation(step_size=1,
refit=False)`` do exactly that). Every peer reports the median of Poisson(mean) as its point,
like crimecast's count models, and its mean as ``prediction_mean``.

Optional: ``pip install -e '.[peers]'``. :func:`available` says whether the packages import.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ml.metrics import mae, poisson_median

#: the statsforecast models and the names they get in the benchmark tables
SF_MODELS = ("sf_auto_ets", "sf_auto_theta", "sf_seasonal_naive_7", "sf_window_average_28")
#: LightGBM configurations tried on the validation window (the best one is scored on test)
LGBM_CONFIGS = (
    {"num_leaves": 15, "n_estimators": 200, "learning_rate": 0.05, "min_child_samples": 20},
    {"num_leaves": 31, "n_estimators": 400, "learning_rate": 0.03, "min_child_samples": 50},
)
#: validation window (days of origins before the test cutoff) for the LightGBM choice
VALIDATION_DAYS = 28


def available() -> bool:
    try:
        import lightgbm  # noqa: F401
        import mlforecast  # noqa: F401
        import statsforecast  # noqa: F401
    except ImportError:
        return False
    return True


def _windows(end: pd.Timestamp, first_origin: pd.Timestamp, horizon: int) -> int:
    """How many one-day-apart origins from ``first_origin`` still have a target ``≤ end``."""
    return int((end - first_origin).days) - horizon + 1


def _lead(cv: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """The rows of a cross_validation frame that are ``horizon`` days after their cutoff."""
    keep = (cv["ds"] - cv["cutoff"]).dt.days == horizon
    return cv.loc[keep.to_numpy()]


def statsforecast_predictions(
    y: pd.DataFrame, test_cutoff, end, horizons: Sequence[int] = (1, 7, 28)
) -> pd.DataFrame:
    """Test-split predictions of the statsforecast peers (long: unique_id, ds, horizon, model,
    prediction_mean). ``y``: unique_id, ds, y (gap-filled daily counts)."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, AutoTheta, SeasonalNaive, WindowAverage

    # fitted once before the cutoff, then moved along the test window with `forward`
    fitted = [
        AutoETS(season_length=7, alias="sf_auto_ets"),
        AutoTheta(season_length=7, alias="sf_auto_theta"),
    ]
    # no parameters to fit (no `forward` either): "refit" at each origin is reading its window
    windows = [
        SeasonalNaive(season_length=7, alias="sf_seasonal_naive_7"),
        WindowAverage(window_size=28, alias="sf_window_average_28"),
    ]
    test_cutoff, end = pd.Timestamp(test_cutoff), pd.Timestamp(end)
    data = y.loc[y["ds"] <= end]
    out = []
    for h in horizons:
        n = _windows(end, test_cutoff - pd.Timedelta(days=1), h)
        if n < 1:
            continue
        for models, refit in ((fitted, False), (windows, True)):
            sf = StatsForecast(models=models, freq="D", n_jobs=1)
            cv = sf.cross_validation(df=data, h=h, step_size=1, n_windows=n, refit=refit)
            cv = _lead(cv, h)
            long = cv.melt(
                id_vars=["unique_id", "ds"],
                value_vars=[m.alias for m in models],
                var_name="model",
                value_name="prediction_mean",
            )
            long["horizon"] = h
            out.append(long)
    return pd.concat(out, ignore_index=True)


def _mlforecast(config: dict, lags: Sequence[int]):
    from lightgbm import LGBMRegressor
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean

    model = LGBMRegressor(objective="poisson", verbose=-1, n_jobs=1, random_state=0, **config)
    return MLForecast(
        models={"mlf_lightgbm": model},
        freq="D",
        lags=list(lags),
        lag_transforms={1: [RollingMean(7), RollingMean(28)], 7: [RollingMean(7)]},
        date_features=["dayofweek", "month", "dayofyear"],
    )


def _lags(history_days: int) -> tuple[int, ...]:
    """Lags 1/7/14/28, and the same day a year ago when there is more than a year to learn it."""
    return (1, 7, 14, 28, 364) if history_days > 364 + 180 else (1, 7, 14, 28)


def _mlf_cv(y: pd.DataFrame, config: dict, first_origin, end, horizon: int) -> pd.DataFrame | None:
    data = y.loc[y["ds"] <= end]
    n = _windows(end, first_origin, horizon)
    if n < 1:
        return None
    history = int((pd.Timestamp(first_origin) - data["ds"].min()).days)
    fcst = _mlforecast(config, _lags(history))
    cv = fcst.cross_validation(df=data, n_windows=n, h=horizon, step_size=1, refit=False)
    return _lead(cv, horizon)


def mlforecast_predictions(
    y: pd.DataFrame,
    test_cutoff,
    end,
    horizons: Sequence[int] = (1, 7, 28),
    configs: Sequence[dict] = LGBM_CONFIGS,
) -> tuple[pd.DataFrame, dict[int, dict]]:
    """Test-split predictions of mlforecast + LightGBM, one configuration per horizon chosen on
    the ``VALIDATION_DAYS`` origins before the test window (their targets end before the test
    cutoff). Returns the predictions and the chosen configuration per horizon."""
    test_cutoff, end = pd.Timestamp(test_cutoff), pd.Timestamp(end)
    out, chosen = [], {}
    for h in horizons:
        # validation: origins whose targets all fall before the test cutoff
        val_end = test_cutoff - pd.Timedelta(days=1)
        val_first = val_end - pd.Timedelta(days=VALIDATION_DAYS + h - 1)
        scores = []
        for i, config in enumerate(configs):
            cv = _mlf_cv(y, config, val_first, val_end, h)
            if cv is None:
                continue
            point = poisson_median(np.clip(cv["mlf_lightgbm"].to_numpy(), 0, None))
            scores.append((mae(cv["y"], point), i))
        best = configs[min(scores)[1]] if scores else configs[0]
        chosen[h] = dict(best)
        cv = _mlf_cv(y, best, test_cutoff - pd.Timedelta(days=1), end, h)
        if cv is None:
            continue
        frame = cv[["unique_id", "ds"]].copy()
        frame["model"] = "mlf_lightgbm"
        frame["prediction_mean"] = cv["mlf_lightgbm"].to_numpy()
        frame["horizon"] = h
        out.append(frame)
    return pd.concat(out, ignore_index=True), chosen


def peer_predictions(
    y: pd.DataFrame, test_cutoff, end, horizons: Sequence[int] = (1, 7, 28)
) -> tuple[pd.DataFrame, dict]:
    """Every peer's test predictions with the Poisson-median point and how long each tool took.

    Returns (frame: unique_id, ds, horizon, model, prediction, prediction_mean;
    info: {"seconds": {tool: s}, "lightgbm_config": {h: config}})."""
    t0 = time.perf_counter()
    sf = statsforecast_predictions(y, test_cutoff, end, horizons)
    t1 = time.perf_counter()
    mlf, chosen = mlforecast_predictions(y, test_cutoff, end, horizons)
    t2 = time.perf_counter()
    frame = pd.concat([sf, mlf], ignore_index=True)
    mean = np.clip(frame["prediction_mean"].to_numpy(dtype="float64"), 0, None)
    frame["prediction"] = poisson_median(mean)
    info = {
        "seconds": {"statsforecast": round(t1 - t0, 1), "mlforecast": round(t2 - t1, 1)},
        "lightgbm_config": chosen,
    }
    return frame, info
