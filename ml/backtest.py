"""Leak-free one-step-ahead backtest."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import numpy as np
import pandas as pd

PREDICTION_COLUMNS = [
    "series_id",
    "ds",
    "model",
    "prediction",
    "actual",
    "cutoff",
    "horizon",
    "noise_lambda",
]


def model_name(model) -> str:
    return getattr(model, "name", None) or type(model).__name__


def _as_mapping(models) -> Mapping[str, object]:
    if isinstance(models, Mapping):
        return models
    named = {model_name(m): m for m in models}
    if len(named) != len(models):
        raise ValueError("models have duplicate names; pass a dict name -> model")
    return named


def fit_frame(model, frame: pd.DataFrame, before: date | str | None = None):
    """Fit ``model`` on the rows with ``ds < before`` (all rows if None) and a known ``y``."""
    ds = pd.to_datetime(frame["ds"])
    mask = frame["y"].notna().to_numpy()
    if before is not None:
        mask &= (ds < pd.Timestamp(before)).to_numpy()
    train = frame.loc[mask]
    if train.empty:
        raise ValueError("no training rows")
    model.fit(train, train["y"].to_numpy(dtype="float64"))
    return model


def backtest_one_step(
    frame: pd.DataFrame,
    cutoff: date | str,
    models,
    end: date | str | None = None,
) -> pd.DataFrame:
    """Train each model on ``ds < cutoff``; predict every day ``>= cutoff`` one step ahead.

    ``frame`` is the feature long frame (``marts.daily_features`` or
    :func:`ml.features.build_features` output): each test row's features come from the actual
    history up to the day before, so every test day is a horizon-1 forecast. ``models`` is a
    dict name → model or a list (named by their ``name``); they are fitted IN PLACE, so the
    caller can save them afterwards. ``end`` (inclusive) optionally limits the test window.

    Returns a long frame with :data:`PREDICTION_COLUMNS`; ``noise_lambda`` is the row's
    ``roll_mean_28`` (the λ of the noise floor in :func:`ml.metrics.score`).
    """
    cutoff_ts = pd.Timestamp(cutoff)
    ds = pd.to_datetime(frame["ds"])
    test_mask = ds >= cutoff_ts
    if end is not None:
        test_mask &= ds <= pd.Timestamp(end)
    test = frame.loc[test_mask.to_numpy()]
    if test.empty:
        raise ValueError(f"no rows on or after cutoff {cutoff_ts.date()}")
    out = []
    for name, model in _as_mapping(models).items():
        fit_frame(model, frame, before=cutoff_ts)
        pred = np.asarray(model.predict(test), dtype="float64")
        out.append(
            pd.DataFrame(
                {
                    "series_id": test["series_id"].to_numpy(),
                    "ds": pd.to_datetime(test["ds"]).to_numpy(),
                    "model": name,
                    "prediction": pred,
                    "actual": test["y"].to_numpy(dtype="float64"),
                    "cutoff": cutoff_ts,
                    "horizon": 1,
                    "noise_lambda": test["roll_mean_28"].to_numpy(dtype="float64"),
                }
            )
        )
    return pd.concat(out, ignore_index=True)[PREDICTION_COLUMNS]
