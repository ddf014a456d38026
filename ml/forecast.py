"""Forecasts of the next ``horizon`` days after each series' last observed day.

* :func:`forecast_direct` is the OPERATIONAL forecast (``ml/pipeline.py`` calls it; see
  docs/forecasting.md, "Protocol"): step h uses the direct model of the smallest backtested
  horizon >= h (:func:`horizon_buckets`), refitted on all history with the h-step features of
  :func:`ml.features.horizon_features`, so no forecast is fed back into the features.
* :func:`forecast_recursive` is a library function kept for callers and tests: one fitted
  one-step model forecasts day h from features that include its own forecasts of days
  1 … h-1. The pipeline does not use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ml.backtest import fit_frame
from ml.backtest import model_name as _model_name
from ml.features import (
    FEATURE_COLUMNS,
    STATIC_COLUMNS,
    build_features,
    calendar_features,
    extend_future,
    horizon_features,
    window_features,
)
from ml.metrics import poisson_median

FORECAST_COLUMNS = ["series_id", "ds", "horizon", "model", "forecast"]
_KEEP = ["series_id", "ds", "y", "area", "category", "area_code", "category_code"]


def forecast_recursive(
    history: pd.DataFrame,
    model,
    horizon: int = 28,
    holidays: Iterable[date] | None = None,
    name: str | None = None,
) -> pd.DataFrame:
    """Forecast ``horizon`` days after each series' last day with an already FITTED model.

    ``history`` is a gap-free long frame (``series_id, ds, y``; the mart rows will do: only
    ``y`` and the static ``area``/``category``/``area_code``/``category_code`` columns are used,
    the features are rebuilt). Day ``h`` is forecast from features that include the forecasts
    of days ``1 … h-1``: the model's ``predict_mean`` (expected count; ``predict`` if it has
    none) is fed back into the lags and rolling windows, while the reported ``forecast`` is the
    model's point forecast ``predict`` (clipped at 0). ``holidays`` must cover the forecast days.

    Pass ``area_code``/``category_code`` in ``history`` (as in the mart) when the frame does not
    hold every series of its source, otherwise the dense ranks are recomputed from this frame.
    Series may end on different days; each is forecast for the ``horizon`` days after its own
    last day.

    Returns :data:`FORECAST_COLUMNS` (``horizon`` 1…H), sorted by series and day.
    """
    if horizon < 1:
        raise ValueError("horizon must be >= 1")
    label = name or _model_name(model)
    # Validate the history and get the static columns exactly as build_features computes them.
    hist = build_features(history[[c for c in _KEEP if c in history.columns]], holidays)
    statics = hist.groupby("series_id", sort=True).tail(1).set_index("series_id")
    series = statics.index.to_numpy()

    wide = hist.pivot(index="ds", columns="series_id", values="y")[series]
    dates = pd.date_range(wide.index.min(), wide.index.max() + pd.Timedelta(days=horizon))
    values = wide.reindex(dates).to_numpy(dtype="float64")
    ci = np.arange(len(series))
    last = dates.get_indexer(statics["ds"])

    predict_mean = getattr(model, "predict_mean", model.predict)
    out = []
    for h in range(1, horizon + 1):
        ri = last + h
        x = pd.DataFrame(window_features(values, ri, ci))
        ds = pd.Series(dates[ri])
        x = pd.concat([x, calendar_features(ds, holidays)], axis=1)
        x["series_id"] = series
        x["ds"] = ds
        for col in STATIC_COLUMNS:
            x[col] = statics[col].to_numpy()
        x = x[["series_id", "ds", *FEATURE_COLUMNS]]
        point = np.clip(np.asarray(model.predict(x), dtype="float64"), 0.0, None)
        values[ri, ci] = np.clip(np.asarray(predict_mean(x), dtype="float64"), 0.0, None)
        out.append(
            pd.DataFrame(
                {"series_id": series, "ds": ds, "horizon": h, "model": label, "forecast": point}
            )
        )
    result = pd.concat(out, ignore_index=True)
    return result.sort_values(["series_id", "ds"], kind="stable")[FORECAST_COLUMNS].reset_index(
        drop=True
    )


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
