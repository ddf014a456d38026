"""Forecasts of the next ``horizon`` days after each series' last observed day.

:func:`forecast_direct` is the operational forecast (``ml/pipeline.py`` calls it; see
docs/forecasting.md, "Protocol"): step h uses the direct model of the smallest backtested
horizon >= h (:func:`horizon_buckets`), refitted on all history with the h-step features of
:func:`ml.features.horizon_features`, so no forecast is fed back into the features.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ml.backtest import fit_frame
from ml.features import extend_future, horizon_features
from ml.metrics import poisson_median

# --- direct multi-horizon forecast from the champions -----------------------------------------

DIRECT_COLUMNS = [
    "series_id",
    "ds",
    "origin",
    "horizon",
    "bucket",
    "model",
    "forecast",
    "forecast_mean",
]


def horizon_buckets(horizon: int, trained: Sequence[int]) -> dict[int, int]:
    """Forecast step h → the smallest trained (backtested) horizon ≥ h: the direct model whose
    features are known h days ahead. Every step needs such a bucket."""
    out = {}
    for h in range(1, horizon + 1):
        ok = [b for b in trained if b >= h]
        if not ok:
            raise ValueError(f"no backtested horizon covers step {h}; add {horizon} to the plan")
        out[h] = min(ok)
    return out


def forecast_direct(
    frame: pd.DataFrame,
    champions: pd.DataFrame,
    make_model: Callable[[str], object],
    horizon: int = 28,
    trained_horizons: Sequence[int] = (1, 7, 28),
    holidays: Iterable[date] | None = None,
    ensemble: tuple[str, Mapping[int, Sequence[str]]] | None = None,
    train_days: int | None = None,
) -> tuple[pd.DataFrame, dict[tuple[str, int], object], dict[int, pd.DataFrame]]:
    """Forecast ``horizon`` days after each series' last day with each series' champion.

    ``champions`` has ``series_id, horizon, model`` (from :func:`ml.champion.select_champions`)
    for every trained horizon. Step h uses the direct model of bucket ``b`` = the smallest
    trained horizon ≥ h, refitted on ALL history with the b-step features; a model is fitted
    only if it is some series' champion at that bucket (``ensemble = (name, {bucket: members})``
    fits the members and averages their expected counts). Returns the forecasts
    (:data:`DIRECT_COLUMNS`; ``origin`` = the series' last observed day), the fitted models
    keyed by (name, bucket), and each bucket's feature rows (for explanations).
    """
    with threadpool_limits(1):
        return _forecast_direct(
            frame, champions, make_model, horizon, trained_horizons, holidays, ensemble, train_days
        )


def _forecast_direct(
    frame, champions, make_model, horizon, trained, holidays, ensemble, train_days
):
    buckets = horizon_buckets(horizon, trained)
    ext = extend_future(frame, horizon, holidays)
    last = frame.groupby("series_id")["ds"].max()
    ext["step"] = (ext["ds"] - ext["series_id"].map(last)).dt.days
    ens_name, ens_by_bucket = ensemble if ensemble else (None, {})
    fitted: dict[tuple[str, int], object] = {}
    rows_by_bucket: dict[int, pd.DataFrame] = {}
    out = []
    for b in sorted(set(buckets.values())):
        steps = [h for h, bb in buckets.items() if bb == b]
        fh = horizon_features(ext, b)
        target = fh[fh["is_future"] & fh["step"].isin(steps)]
        rows_by_bucket[b] = target
        champ = champions[champions["horizon"] == b].set_index("series_id")["model"]
        needed = set(champ.unique())
        ens_members = list(ens_by_bucket.get(b, ()))
        fit_names = set(needed - {ens_name}) | (set(ens_members) if ens_name in needed else set())
        means: dict[str, np.ndarray] = {}
        points: dict[str, np.ndarray] = {}
        for name in sorted(fit_names):
            model = make_model(name)
            if hasattr(model, "observe"):
                model.observe(frame)
            fit_frame(model, fh[~fh["is_future"]], train_days=train_days)
            fitted[(name, b)] = model
            points[name] = np.asarray(model.predict(target), dtype="float64")
            mean_fn = getattr(model, "predict_mean", None)
            means[name] = points[name] if mean_fn is None else np.asarray(mean_fn(target), "f8")
        if ens_name in needed:
            means[ens_name] = np.mean([means[m] for m in ens_members], axis=0)
            points[ens_name] = poisson_median(means[ens_name])
        who = target["series_id"].map(champ).to_numpy()
        for name in needed:
            sel = who == name
            if not sel.any():
                continue
            t = target[sel]
            out.append(
                pd.DataFrame(
                    {
                        "series_id": t["series_id"].to_numpy(),
                        "ds": t["ds"].to_numpy(),
                        "origin": t["series_id"].map(last).to_numpy(),
                        "horizon": t["step"].to_numpy().astype("int64"),
                        "bucket": b,
                        "model": name,
                        "forecast": np.clip(points[name][sel], 0.0, None),
                        "forecast_mean": np.clip(means[name][sel], 0.0, None),
                    }
                )
            )
    result = pd.concat(out, ignore_index=True).sort_values(["series_id", "ds"], kind="stable")
    return result[DIRECT_COLUMNS].reset_index(drop=True), fitted, rows_by_bucket
