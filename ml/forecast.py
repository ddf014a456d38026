"""Operational forecast: the next ``horizon`` days after the last observed day, recursively."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import numpy as np
import pandas as pd

from ml.backtest import model_name as _model_name
from ml.features import (
    FEATURE_COLUMNS,
    STATIC_COLUMNS,
    build_features,
    calendar_features,
    window_features,
)

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
