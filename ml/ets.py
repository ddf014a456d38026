"""Holt-Winters (ETS(A,N,A), weekly season) per series, behind the common model interface.

Parameters (smoothing ``alpha``/``gamma`` and the initial level and 7 seasonal states) are
estimated per series by statsmodels' ``ExponentialSmoothing`` on the training rows only (the
``max_train_days`` most recent of them). Forecasts then run the same recursion with those
FIXED parameters over the observed history (:meth:`HoltWintersModel.observe`) up to each row's
forecast ``origin``, so a forecast made at the origin uses only counts up to the origin, exactly
like the feature models (the backtest's one-step-ahead rows update the state daily without
refitting; a refit happens at each backtest cutoff).

The recursion (statsmodels' additive form, checked against its ``fittedvalues`` in the tests):
``l_t = α (y_t − s_{t−7}) + (1 − α) l_{t−1}``, ``s_t = γ (y_t − l_{t−1}) + (1 − γ) s_{t−7}``;
the h-step forecast from origin o is ``l_o + s_{o + h − 7⌈h/7⌉}``. Counts are not Gaussian, but
additive errors are what tolerates the zeros of sparse series (multiplicative ETS cannot).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin

from ml.metrics import poisson_median
from ml.models import describe

PERIOD = 7


def fit_series(y: np.ndarray, initialization: str = "heuristic") -> dict[str, Any]:
    """statsmodels ETS(A,N,A) fit of one series → alpha, gamma, level0, seasons0 (s_{1-m}…s_0)."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    y = np.asarray(y, dtype="float64")
    if len(y) < 2 * PERIOD + 1 or np.nanstd(y) == 0:
        # too short / constant: a flat mean with no seasonality (all smoothing off)
        return {
            "alpha": 0.0,
            "gamma": 0.0,
            "level0": float(np.nanmean(y) if len(y) else 0.0),
            "seasons0": [0.0] * PERIOD,
        }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ExponentialSmoothing(
            y,
            trend=None,
            seasonal="add",
            seasonal_periods=PERIOD,
            initialization_method=initialization,
        ).fit()
    p = res.params
    return {
        "alpha": float(p["smoothing_level"]),
        "gamma": float(p["smoothing_seasonal"]),
        "level0": float(p["initial_level"]),
        "seasons0": [float(v) for v in p["initial_seasons"]],
    }


def filter_states(y: np.ndarray, params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Level ``l_t`` and seasonal ``s_t`` after observing ``y_t`` (NaN y: states carried)."""
    a, g = params["alpha"], params["gamma"]
    level = params["level0"]
    seasons = list(params["seasons0"])
    n = len(y)
    lv = np.empty(n)
    ss = np.empty(n)
    for t in range(n):
        sm = seasons[-PERIOD]
        if np.isfinite(y[t]):
            new_level = a * (y[t] - sm) + (1 - a) * level
            new_season = g * (y[t] - level) + (1 - g) * sm
        else:
            new_level, new_season = level, sm
        level = new_level
        seasons.append(new_season)
        lv[t] = level
        ss[t] = new_season
    return lv, ss


class HoltWintersModel(RegressorMixin, BaseEstimator):
    """Local Holt-Winters per series (see the module docstring). Horizon-agnostic: one fit per
    cutoff serves every horizon (``horizon_agnostic = True``). A scikit-learn estimator: the
    per-series parameters are fitted state (``params_``), the observed counts ``history_``."""

    name = "holt_winters"
    horizon_agnostic = True
    features: list[str] = []

    def __init__(
        self,
        max_train_days: int = 728,
        initialization: str = "heuristic",
        point: str = "poisson_median",
    ) -> None:
        self.max_train_days = max_train_days
        self.initialization = initialization
        self.point = point

    def observe(self, history: pd.DataFrame) -> HoltWintersModel:
        """The observed counts (``series_id, ds, y``) the forecasts may condition on."""
        h = history[["series_id", "ds", "y"]].copy()
        h["ds"] = pd.to_datetime(h["ds"])
        self.history_ = h.pivot(index="ds", columns="series_id", values="y").sort_index()
        return self

    def fit(self, X: pd.DataFrame, y) -> HoltWintersModel:
        frame = pd.DataFrame(
            {
                "series_id": X["series_id"].to_numpy(),
                "ds": pd.to_datetime(X["ds"]).to_numpy(),
                "y": np.asarray(y, dtype="float64"),
            }
        )
        frame = frame[np.isfinite(frame["y"])].sort_values(["series_id", "ds"])
        self.params_: dict[str, dict[str, Any]] = {}
        for sid, g in frame.groupby("series_id", sort=True):
            g = g.tail(self.max_train_days)
            p = fit_series(g["y"].to_numpy(), self.initialization)
            p["start"] = str(g["ds"].iloc[0].date())
            self.params_[sid] = p
        if getattr(self, "history_", None) is None:
            self.observe(frame)
        return self

    def predict_mean(self, X: pd.DataFrame) -> np.ndarray:
        if not getattr(self, "params_", None) or getattr(self, "history_", None) is None:
            raise RuntimeError("model is not fitted / has no observed history")
        ds = pd.to_datetime(X["ds"])
        origin = pd.to_datetime(X["origin"]) if "origin" in X else ds - pd.Timedelta(days=1)
        out = np.full(len(X), np.nan)
        sids = X["series_id"].to_numpy()
        for sid in pd.unique(sids):
            rows = np.flatnonzero(sids == sid)
            p = self.params_.get(sid)
            if p is None or sid not in self.history_.columns:
                continue
            start = pd.Timestamp(p["start"])
            col = self.history_[sid]
            last_origin = origin.iloc[rows].max()
            y = col.loc[start:last_origin].reindex(pd.date_range(start, last_origin)).to_numpy()
            lv, ss = filter_states(y, p)
            o_idx = ((origin.iloc[rows] - start).dt.days).to_numpy()
            h = ((ds.iloc[rows] - origin.iloc[rows]).dt.days).to_numpy()
            s_idx = o_idx + h - PERIOD * np.ceil(h / PERIOD).astype(int)
            ok = (o_idx >= 0) & (o_idx < len(lv))
            seas = np.where(
                s_idx >= 0,
                ss[np.clip(s_idx, 0, len(ss) - 1)],
                np.asarray(p["seasons0"])[np.clip(s_idx + PERIOD, 0, PERIOD - 1)],
            )
            vals = lv[np.clip(o_idx, 0, len(lv) - 1)] + seas
            out[rows[ok]] = vals[ok]
        return np.clip(out, 0.0, None)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        mean = self.predict_mean(X)
        return poisson_median(mean) if self.point == "poisson_median" else mean

    def save(self, path: str | Path) -> Path:
        path = Path(path).with_suffix(".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        # the fixed form of the model beside its parameters, so the artifact is self-describing
        spec = {**describe(self), "seasonal_periods": PERIOD, "trend": None, "seasonal": "add"}
        path.write_text(json.dumps({**spec, "series": self.params_}, indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> HoltWintersModel:
        spec = json.loads(Path(path).read_text())
        model = cls(
            max_train_days=spec["max_train_days"],
            initialization=spec["initialization"],
            point=spec["point"],
        )
        model.params_ = spec["series"]
        return model
