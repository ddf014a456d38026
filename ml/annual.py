"""Annual forecasts of French recorded-crime rates (SSMSI): models, splits, metrics, intervals.

Plain Python (no Dagster). Input: ``marts.france_annual_features`` (one row per series and
TARGET year; every feature of year t uses years < t). The row of year o+1 therefore holds
everything known at the end of year o, the forecast ORIGIN. A forecast of year o+h is DIRECT:
one global model per geography level, fitted on (origin, horizon) pairs, with the horizon as a
feature. :func:`make_pairs` builds that long frame (``series_id, ds, y`` + features, where
``ds`` is the target year and ``y`` the rate per 100,000 inhabitants in it).

Every model is a scikit-learn estimator (``BaseEstimator`` + ``RegressorMixin``: parameters
stored as given, fitted state ending in ``_``, ``get_params``/``clone`` from scikit-learn),
``fit(X, y)`` / ``predict(X)`` on the pairs frame, predicting the RATE per 100k; models that
read each series' history (Holt, the ensemble) get it through ``observe(history)``, the hook
the daily models use. :func:`recorded_params` is what the tables' ``params`` column holds:

* baselines: ``last_value`` (the rate at the origin), ``drift`` (last value plus the average
  yearly change since the first year, times h), ``holt`` (damped Holt linear trend, implemented
  here with numpy; smoothing parameters shared by all series, chosen on validation years);
* global regressors (Ridge, RandomForest, HistGradientBoosting, XGBoost) that learn the LOG
  RATIO of the target year's rate to the origin's rate, ``ln((y + 1) / (last + 1))``, and
  forecast ``(last + 1)·exp(pred) − 1``. The log ratio makes series of very different levels
  (homicides ≈ 1, thefts ≈ 1,000 per 100k) comparable, so one model can pool them. This target
  is a design choice made on that reasoning: no raw-rate target is implemented or compared on
  validation years (docs/france.md). Samples are weighted by the origin's rate, so that the
  fitted loss is close to the absolute error of the RATE the benchmark scores.

Splits (``SPLITS``): train ≤ 2023 → test 2024 (h = 1) and train ≤ 2021 → test 2022–2024
(h = 1..3). Hyper-parameters (and the ``selected`` model) are chosen on validation years
strictly before the test years; the test years are scored once.

Intervals: empirical quantiles of the log-scale residuals ``ln(y + 1) − ln(ŷ + 1)`` per
horizon from rolling-origin backtests of the forecasting model (conformal-style), 80 % and
95 %, made to hold the point, to widen with the horizon and to grow at most like sqrt(h) from
the one-step band (:func:`monotone_capped_quantiles`), then back-transformed.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from ml.metrics import mae, rmse
from ml.tables import Tables

FEATURES_TABLE = "marts.france_annual_features"
EPS = 1.0  # per 100k: keeps log ratios finite for rates of 0 (e.g. drug fines before 2020)
#: Largest yearly log change a model may extrapolate (±25 %/year). Structural breaks, such as
#: "Usage de stupéfiants (AFD)" (fixed fines, from 0 before September 2020), otherwise make
#: trend models explode; the clip is part of every trend model, not tuned on test years.
MAX_LOG_GROWTH = 0.25
#: Log-ratio features are clipped to ±1 for the same reason.
MAX_LOG_FEATURE = 1.0
LEVEL_DATASET = {"region": "france_reg", "departement": "france_dep"}
#: The models a scheduled run tries (fast); "all" (every model of :func:`candidate_grid`) is
#: what the benchmark (bench/france.py) runs.
LEAN_MODELS = ("last_value", "drift", "holt", "ridge")


def model_list(text: str) -> list[str] | None:
    """A comma list of model names → those names; ``all`` → None (every model); empty →
    :data:`LEAN_MODELS`."""
    text = text.strip()
    if text == "all":
        return None
    return [m.strip() for m in text.split(",") if m.strip()] or list(LEAN_MODELS)


#: Columns of the pairs frame the global regressors use.
MODEL_FEATURES = [
    "horizon",
    "log_last",
    "lr_1",
    "lr_2",
    "lr_roll_3",
    "lr_parent",
    "parent_log_growth_lag_1",
    "national_log_growth_lag_1",
    "lr_drift",
    "indicator_code",
]


# --------------------------------------------------------------------------- data


def load_features(tables: Tables, table: str = FEATURES_TABLE) -> pd.DataFrame:
    """The feature mart as a DataFrame (one row per series and target year), read through
    ``tables`` (:class:`ml.tables.Tables`)."""
    return tables.read(f"select * from {table} order by geo_level, series_id, year")


def history(features: pd.DataFrame) -> pd.DataFrame:
    """Observed rate, count and population per series and year (incl. the first year, which
    the feature mart holds only as the second year's lag_1)."""
    obs = features.loc[~features["is_forecast_row"].astype(bool)]
    obs = obs[["series_id", "year", "y", "recorded_count", "population"]]
    first = features.sort_values("year").groupby("series_id", as_index=False).first()
    first = pd.DataFrame(
        {
            "series_id": first["series_id"],
            "year": first["year"] - 1,
            "y": first["lag_1"],
            "recorded_count": first["count_lag_1"],
            "population": first["population_lag_1"],
        }
    )
    out = pd.concat([first, obs], ignore_index=True)
    return out.drop_duplicates(["series_id", "year"]).sort_values(["series_id", "year"])


def _log_ratio(a, b) -> np.ndarray:
    return np.log((np.asarray(a, dtype="float64") + EPS) / (np.asarray(b, dtype="float64") + EPS))


def make_pairs(
    features: pd.DataFrame,
    horizons: Iterable[int],
    *,
    origins: Iterable[int] | None = None,
    max_target: int | None = None,
    keep_unobserved: bool = False,
) -> pd.DataFrame:
    """Direct-forecast pairs: for origin o and horizon h, the features of the mart row of year
    o+1 (all from years ≤ o) and the target of year o+h. Columns: series_id, origin, horizon,
    ds (target year), y (target rate, NaN if unobserved), actual_count, last (rate at o),
    population_origin, the model features and the series' descriptors."""
    feats = features.copy()
    feats["origin"] = feats["year"] - 1
    hist = history(features)
    first = hist.groupby("series_id").agg(first_year=("year", "min"))
    first["first_y"] = hist.sort_values("year").groupby("series_id")["y"].first()
    feats = feats.join(first, on="series_id")
    if origins is not None:
        feats = feats.loc[feats["origin"].isin(list(origins))]
    target = hist.rename(columns={"year": "ds", "y": "y", "recorded_count": "actual_count"})
    target = target[["series_id", "ds", "y", "actual_count"]]
    frames = []
    for h in horizons:
        f = feats.drop(columns=["y", "recorded_count", "population"]).copy()
        f["horizon"] = int(h)
        f["ds"] = f["origin"] + int(h)
        frames.append(f)
    pairs = pd.concat(frames, ignore_index=True).merge(target, on=["series_id", "ds"], how="left")
    if max_target is not None:
        pairs = pairs.loc[pairs["ds"] <= max_target]
    if not keep_unobserved:
        pairs = pairs.loc[pairs["y"].notna()]
    pairs["last"] = pairs["lag_1"]
    pairs["population_origin"] = pairs["population_lag_1"]
    span = (pairs["origin"] - pairs["first_year"]).clip(lower=1)
    pairs["drift_slope"] = (pairs["last"] - pairs["first_y"]) / span
    pairs["log_last"] = np.log(pairs["last"] + EPS)
    pairs["lr_1"] = _log_ratio(pairs["lag_1"], pairs["lag_2"])
    pairs["lr_2"] = _log_ratio(pairs["lag_1"], pairs["lag_3"]) / 2.0
    pairs["lr_roll_3"] = _log_ratio(pairs["lag_1"], pairs["roll_mean_3"])
    pairs["lr_parent"] = _log_ratio(pairs["lag_1"], pairs["parent_rate_lag_1"])
    pairs["lr_drift"] = _log_ratio(pairs["lag_1"], pairs["first_y"]) / span
    return pairs.sort_values(["series_id", "origin", "horizon"]).reset_index(drop=True)


# --------------------------------------------------------------------------- models


class LastValue(RegressorMixin, BaseEstimator):
    """Naive: the rate of the origin year, for every horizon."""

    name = "last_value"

    def fit(self, X: pd.DataFrame, y=None) -> LastValue:  # noqa: ARG002 - nothing to learn
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return X["last"].to_numpy(dtype="float64")


class Drift(RegressorMixin, BaseEstimator):
    """Random walk with drift: last + h × (last − first) / (origin − first year), floored at 0."""

    name = "drift"

    def __init__(self, damping: float = 1.0) -> None:
        self.damping = damping

    def fit(self, X: pd.DataFrame, y=None) -> Drift:  # noqa: ARG002
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        h = X["horizon"].to_numpy(dtype="float64")
        slope = X["drift_slope"].to_numpy("float64")
        pred = X["last"].to_numpy("float64") + self.damping * h * slope
        return np.clip(pred, 0.0, None)


class HoltDamped(RegressorMixin, BaseEstimator):
    """Damped Holt linear trend per series (smoothing parameters shared by all series), run
    over each series' history up to the origin; on the log scale when ``log=True``.
    :meth:`observe` stores the history table (series × year → rate, ``history_``);
    ``predict`` only reads years ≤ each row's origin. Why this numpy recursion and not
    statsmodels or the daily ETS filter: docs/decisions.md."""

    name = "holt"

    def __init__(self, alpha: float = 0.8, beta: float = 0.2, phi: float = 0.8, log: bool = True):
        self.alpha = alpha
        self.beta = beta
        self.phi = phi
        self.log = log

    def observe(self, history_frame: pd.DataFrame) -> HoltDamped:
        """The observed rates (``series_id, year, y``) the forecasts may condition on."""
        self.history_ = history_frame
        return self

    def fit(self, X: pd.DataFrame, y=None) -> HoltDamped:  # noqa: ARG002 - per-series states
        return self

    def _states(self) -> tuple[pd.Index, list[int], np.ndarray, np.ndarray]:
        wide = self.history_.pivot(index="series_id", columns="year", values="y").sort_index(axis=1)
        values = wide.to_numpy(dtype="float64")
        if self.log:
            values = np.log(values + EPS)
        n_years = values.shape[1]
        levels = np.full(values.shape, np.nan)
        trends = np.zeros(values.shape)
        level = values[:, 0].copy()
        trend = np.zeros(len(level))
        if n_years > 1:
            trend = np.where(np.isfinite(values[:, 1]), values[:, 1] - values[:, 0], 0.0)
        levels[:, 0] = level
        a, b, phi = self.alpha, self.beta, self.phi
        for j in range(1, n_years):
            obs = values[:, j]
            ok = np.isfinite(obs)
            prev = level
            level = np.where(ok, a * obs + (1 - a) * (prev + phi * trend), prev + phi * trend)
            trend = np.where(ok, b * (level - prev) + (1 - b) * phi * trend, phi * trend)
            if self.log:
                trend = np.clip(trend, -MAX_LOG_GROWTH, MAX_LOG_GROWTH)
            levels[:, j], trends[:, j] = level, trend
        return wide.index, list(wide.columns), levels, trends

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if getattr(self, "history_", None) is None:
            raise RuntimeError("HoltDamped needs the history (observe) before predict")
        index, years, levels, trends = self._states()
        rows = index.get_indexer(X["series_id"])
        cols = pd.Index(years).get_indexer(X["origin"].astype(int))
        h = X["horizon"].to_numpy(dtype="int64")
        damp = np.array([sum(self.phi**i for i in range(1, k + 1)) for k in range(h.max() + 1)])
        ok = (rows >= 0) & (cols >= 0)
        out = np.full(len(X), np.nan)
        out[ok] = levels[rows[ok], cols[ok]] + damp[h[ok]] * trends[rows[ok], cols[ok]]
        if self.log:
            out = np.exp(out) - EPS
        return np.clip(out, 0.0, None)


class LogRatioRegressor(RegressorMixin, BaseEstimator):
    """A global regressor (``estimator``, any scikit-learn regressor taking
    ``sample_weight``; cloned into ``estimator_`` at fit) of the log ratio
    ln((y+1)/(last+1)), weighted by the origin rate. ``name``: the model's name in the
    tables."""

    def __init__(
        self,
        estimator: Any = None,
        name: str = "ridge",
        weighted: bool = True,
        shrink: float = 1.0,
    ) -> None:
        self.estimator = estimator
        self.name = name
        self.weighted = weighted
        self.shrink = shrink

    def _X(self, X: pd.DataFrame) -> np.ndarray:
        # NaN log-ratio features (too little history) → 0, i.e. "no change"
        values = np.nan_to_num(X[MODEL_FEATURES].to_numpy(dtype="float64"))
        for i, col in enumerate(MODEL_FEATURES):
            if col.startswith(("lr_", "parent_log", "national_log")):
                values[:, i] = np.clip(values[:, i], -MAX_LOG_FEATURE, MAX_LOG_FEATURE)
        return values

    def fit(self, X: pd.DataFrame, y) -> LogRatioRegressor:
        if self.estimator is None:
            raise ValueError("LogRatioRegressor needs an estimator (e.g. _RidgeImputed(1.0))")
        target = _log_ratio(y, X["last"])
        ok = np.isfinite(target)
        w = (X["last"].to_numpy("float64") + EPS) if self.weighted else np.ones(len(X))
        self.estimator_ = clone(self.estimator)
        with threadpool_limits(1):  # tiny data: threads only add overhead on a shared machine
            self.estimator_.fit(self._X(X)[ok], target[ok], sample_weight=w[ok] / w[ok].mean())
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        with threadpool_limits(1):
            lr = self.shrink * self.estimator_.predict(self._X(X))
        cap = MAX_LOG_GROWTH * X["horizon"].to_numpy("float64")
        lr = np.clip(lr, -cap, cap)
        return np.clip((X["last"].to_numpy("float64") + EPS) * np.exp(lr) - EPS, 0.0, None)


_INDICATOR_COL = MODEL_FEATURES.index("indicator_code")


class _RidgeImputed(RegressorMixin, BaseEstimator):
    """Ridge on standardised features, plus one-hot indicator effects (an indicator's own
    growth) and their interaction with the horizon. Not ``make_pipeline(StandardScaler(),
    Ridge())``: that scaling does not reproduce these numbers (docs/decisions.md)."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def _design(self, X: np.ndarray) -> np.ndarray:
        codes = X[:, _INDICATOR_COL]
        onehot = (codes[:, None] == self.codes_[None, :]).astype("float64")
        h = X[:, [MODEL_FEATURES.index("horizon")]]
        return np.hstack([np.delete(X, _INDICATOR_COL, axis=1), onehot, onehot * h])

    def fit(self, X, y, sample_weight=None) -> _RidgeImputed:
        self.codes_ = np.unique(X[:, _INDICATOR_COL])
        D = self._design(X)
        self.mu_, self.sd_ = D.mean(axis=0), D.std(axis=0) + 1e-9
        self.model_ = Ridge(alpha=self.alpha).fit((D - self.mu_) / self.sd_, y, sample_weight)
        return self

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        return self.model_.predict((self._design(X) - self.mu_) / self.sd_)


def _xgb_regressor(max_depth: int = 2, eta: float = 0.05) -> xgb.XGBRegressor:
    """The annual XGBoost: L1 objective, hist trees, seed 0, one thread, 200 rounds."""
    return xgb.XGBRegressor(
        objective="reg:absoluteerror",
        max_depth=max_depth,
        learning_rate=eta,
        n_estimators=200,
        subsample=0.8,
        colsample_bytree=0.8,
        min_child_weight=5.0,
        tree_method="hist",
        random_state=0,
        n_jobs=1,
        verbosity=0,
    )


class Ensemble(RegressorMixin, BaseEstimator):
    """Mean of member forecasts (simple forecast combination). ``members`` are cloned into
    ``members_`` at fit; the history given to :meth:`observe` goes to the members that take
    one."""

    name = "ensemble"

    def __init__(self, members: tuple[Any, ...] = ()) -> None:
        self.members = members

    def observe(self, history_frame: pd.DataFrame) -> Ensemble:
        """The observed rates, for the members that read a history (Holt)."""
        self.history_ = history_frame
        return self

    def fit(self, X: pd.DataFrame, y) -> Ensemble:
        if not self.members:
            raise ValueError("Ensemble needs at least one member")
        self.members_ = [clone(m) for m in self.members]
        history_frame = getattr(self, "history_", None)
        for m in self.members_:
            if history_frame is not None and hasattr(m, "observe"):
                m.observe(history_frame)
            m.fit(X, y)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "members_")
        return np.mean([m.predict(X) for m in self.members_], axis=0)


#: Per regressor name, the parameters the tables' ``params`` column records, as
#: {recorded key: parameter of the inner estimator}: the keys the tables have held since
#: before these models were scikit-learn estimators (e.g. ``eta`` for XGBoost's
#: ``learning_rate``), so that runs stay comparable across vintages.
RECORDED_PARAMS = {
    "ridge": {"alpha": "alpha"},
    "random_forest": {"min_samples_leaf": "min_samples_leaf"},
    "hist_gradient_boosting": {
        "max_depth": "max_depth",
        "learning_rate": "learning_rate",
        "max_iter": "max_iter",
    },
    "xgboost": {
        "objective": "objective",
        "max_depth": "max_depth",
        "eta": "learning_rate",
        "n_estimators": "n_estimators",
        "subsample": "subsample",
        "colsample_bytree": "colsample_bytree",
        "min_child_weight": "min_child_weight",
    },
}


def recorded_params(model) -> dict[str, Any]:
    """What ``ml.france_backtest_metrics.params`` records of a model: its scikit-learn
    parameters (``get_params(deep=False)``, in ``__init__``'s order); for a
    :class:`LogRatioRegressor` the :data:`RECORDED_PARAMS` of its inner estimator plus
    ``weighted`` and ``shrink``; for an :class:`Ensemble`
    ``{"members": [{"model": name, **recorded_params(member)}]}``."""
    if isinstance(model, Ensemble):
        return {"members": [{"model": m.name, **recorded_params(m)} for m in model.members]}
    if isinstance(model, LogRatioRegressor):
        inner = model.estimator.get_params(deep=False)
        picked = {key: inner[param] for key, param in RECORDED_PARAMS[model.name].items()}
        return {**picked, "weighted": model.weighted, "shrink": model.shrink}
    params = model.get_params(deep=False)  # sorted by name; the record keeps __init__'s order
    return {k: params[k] for k in inspect.signature(type(model).__init__).parameters if k in params}


def _ridge(alpha: float, **kw) -> LogRatioRegressor:
    return LogRatioRegressor(_RidgeImputed(alpha), "ridge", **kw)


def _rf(min_samples_leaf: int, **kw) -> LogRatioRegressor:
    forest = RandomForestRegressor(
        n_estimators=100,
        min_samples_leaf=min_samples_leaf,
        max_features=0.5,
        n_jobs=1,
        random_state=0,
    )
    return LogRatioRegressor(forest, "random_forest", **kw)


def _hgb(max_depth: int, learning_rate: float, **kw) -> LogRatioRegressor:
    boost = HistGradientBoostingRegressor(
        max_depth=max_depth,
        learning_rate=learning_rate,
        max_iter=150,
        min_samples_leaf=20,
        early_stopping=False,
        random_state=0,
    )
    return LogRatioRegressor(boost, "hist_gradient_boosting", **kw)


def _xgb(max_depth: int, eta: float, **kw) -> LogRatioRegressor:
    return LogRatioRegressor(_xgb_regressor(max_depth, eta), "xgboost", **kw)


def candidate_grid(models: Iterable[str] | None = None) -> dict[str, list[Callable[[], Any]]]:
    """Per model name, the hyper-parameter candidates (factories) tried on validation years
    (``models``: only these names, in this order)."""
    grid = {
        "last_value": [LastValue],
        "drift": [lambda d=d: Drift(d) for d in (1.0, 0.5)],
        "holt": [
            lambda a=a, b=b, p=p: HoltDamped(a, b, p, log=True)
            for a in (0.6, 0.9)
            for b in (0.1, 0.3)
            for p in (0.5, 0.9)
        ],
        "ridge": [lambda a=a: _ridge(a) for a in (1.0, 100.0)],
        "random_forest": [lambda m=m: _rf(m) for m in (10, 40)],
        "hist_gradient_boosting": [lambda d=d: _hgb(d, 0.05) for d in (2, 4)],
        "xgboost": [lambda d=d: _xgb(d, 0.05) for d in (2, 4)],
        "ensemble": [
            lambda: Ensemble((Drift(0.5), HoltDamped(0.9, 0.1, 0.5), _ridge(100.0))),
            lambda: Ensemble((Drift(0.5), _ridge(100.0), _hgb(2, 0.05))),
        ],
    }
    if models is None:
        return grid
    unknown = [m for m in models if m not in grid]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; known: {list(grid)}")
    return {m: grid[m] for m in models}


# --------------------------------------------------------------------------- splits, metrics


@dataclass(frozen=True)
class Split:
    """Train on targets ≤ train_end; test origin = train_end, horizons 1..max_horizon.
    Validation folds: the same design moved back so that every validation target is
    ≤ train_end (strictly before the test years)."""

    name: str
    train_end: int
    max_horizon: int
    validation_origins: tuple[int, ...] = field(default=())

    @property
    def horizons(self) -> list[int]:
        return list(range(1, self.max_horizon + 1))

    @property
    def test_years(self) -> list[int]:
        return [self.train_end + h for h in self.horizons]


SPLITS = [
    Split("h1", train_end=2023, max_horizon=1, validation_origins=(2021, 2022)),
    Split("h1_3", train_end=2021, max_horizon=3, validation_origins=(2018, 2019, 2020)),
]


def score(frame: pd.DataFrame) -> dict[str, float]:
    """MAE, RMSE, MAPE (%, over actual > 0) of the rate per 100k; MAE of counts; n."""
    a = frame["y"].to_numpy("float64")
    p = frame["prediction"].to_numpy("float64")
    pos = a > 0
    mape = float(np.mean(np.abs(a[pos] - p[pos]) / a[pos]) * 100.0) if pos.any() else math.nan
    return {
        "mae": mae(a, p),
        "rmse": rmse(a, p),
        "mape": mape,
        "mae_count": mae(frame["actual_count"], frame["prediction_count"]),
        "n": int(len(frame)),
    }


def _fit_predict(model, train: pd.DataFrame, test: pd.DataFrame, hist: pd.DataFrame):
    if hasattr(model, "observe"):
        model.observe(hist.loc[hist["year"] <= test["origin"].max()])
    model.fit(train, train["y"].to_numpy("float64"))
    return model.predict(test)


def _predict_fold(
    factory, pairs: pd.DataFrame, hist: pd.DataFrame, origin: int, horizons: list[int]
) -> pd.DataFrame:
    """Fit on pairs with target ≤ origin, predict origin + horizons."""
    train = pairs.loc[pairs["ds"] <= origin]
    test = pairs.loc[(pairs["origin"] == origin) & pairs["horizon"].isin(horizons)].copy()
    model = factory()
    test["prediction"] = _fit_predict(model, train, test, hist)
    test["prediction_count"] = test["prediction"] * test["population_origin"] / 100_000.0
    test["model"] = model.name
    return test


def select_by_validation(
    pairs: pd.DataFrame, hist: pd.DataFrame, split: Split, models: Iterable[str] | None = None
) -> dict[str, tuple[Callable[[], Any], float]]:
    """Per model name, the candidate with the lowest validation MAE (folds end ≤ train_end)."""
    chosen: dict[str, tuple[Callable[[], Any], float]] = {}
    for name, factories in candidate_grid(models).items():
        best = None
        for factory in factories:
            folds = []
            for o in split.validation_origins:
                hs = [h for h in split.horizons if o + h <= split.train_end]
                if hs:
                    folds.append(_predict_fold(factory, pairs, hist, o, hs))
            val = mae(*(pd.concat(folds)[["y", "prediction"]].to_numpy().T))
            if best is None or val < best[1]:
                best = (factory, val)
        chosen[name] = best
    return chosen


@dataclass
class BacktestResult:
    predictions: pd.DataFrame
    metrics: pd.DataFrame
    selected: str
    chosen_params: dict[str, dict[str, Any]]


def backtest(
    features: pd.DataFrame,
    split: Split,
    geo_level: str,
    models: Iterable[str] | None = None,
    intervals: bool = False,
) -> BacktestResult:
    """Choose hyper-parameters on validation folds, then score every model on the test years
    (last_value too, as the reference, even when ``models`` leaves it out). ``intervals``: also
    the out-of-sample coverage of the 80 / 95 % bands of the selected model and last_value
    (:func:`interval_coverage`, calibrated on years ≤ train_end) in their pooled rows
    (columns coverage_80, coverage_95, max_hi95_ratio)."""
    feats = features.loc[features["geo_level"] == geo_level]
    hist = history(feats)
    pairs = make_pairs(feats, split.horizons, max_target=split.train_end + split.max_horizon)
    chosen = select_by_validation(pairs, hist, split, models)
    selected = min(chosen, key=lambda k: chosen[k][1])
    if "last_value" not in chosen:
        # the naive reference is always scored (never selected when not asked for), so the
        # tables can say how the chosen model compares with it on validation and test years
        chosen = {**select_by_validation(pairs, hist, split, ["last_value"]), **chosen}
    preds, rows, params = [], [], {}
    dataset = f"{LEVEL_DATASET[geo_level]}_{split.name}"
    for name, (factory, val_mae) in chosen.items():
        test = _predict_fold(factory, pairs, hist, split.train_end, split.horizons)
        test["split"] = split.name
        preds.append(test)
        params[name] = recorded_params(factory())
        cover = (
            interval_coverage(features, geo_level, split, factory, test)
            if intervals and name in (selected, "last_value")
            else {}
        )
        for horizon in [None, *split.horizons] if split.max_horizon > 1 else [None]:
            part = test if horizon is None else test.loc[test["horizon"] == horizon]
            rows.append(
                {
                    "dataset": dataset,
                    "split": split.name,
                    "geo_level": geo_level,
                    "train_end": split.train_end,
                    "test_years": ",".join(map(str, split.test_years)),
                    "model": name,
                    "horizon": horizon,
                    **score(part),
                    "validation_mae": val_mae,
                    "selected": name == selected,
                    "params": json.dumps(params[name]),
                    **(cover if horizon is None else {}),
                }
            )
    return BacktestResult(pd.concat(preds, ignore_index=True), pd.DataFrame(rows), selected, params)


# --------------------------------------------------------------------------- forecasts


QUANTILES = {"lo_95": 0.025, "lo_80": 0.10, "hi_80": 0.90, "hi_95": 0.975}


def residual_quantiles(
    factory,
    features: pd.DataFrame,
    horizons: list[int],
    min_n: int = 30,
    max_target: int | None = None,
) -> dict[int, dict[str, float]]:
    """Interval offsets per horizon on the log scale, ``ln(y + EPS) − ln(ŷ + EPS)`` (EPS = 1:
    log1p), from rolling-origin backtests (every origin whose targets are observed and
    ≤ ``max_target``, default the last observed year; each fold fitted on the targets up to
    its origin). Rows after ``max_target`` are dropped before anything is fitted, so a
    backtest calibrates on years before its test years only. The empirical quantiles go through
    :func:`monotone_capped_quantiles` (the band holds the point, widens with the horizon and
    grows at most like sqrt(h) from the one-step band)."""
    feats = features if max_target is None else features.loc[features["year"] <= max_target]
    hist = history(feats)
    last_year = int(hist["year"].max())
    pairs = make_pairs(feats, horizons, max_target=last_year)
    res: dict[int, list[np.ndarray]] = {h: [] for h in horizons}
    for o in sorted(pairs["origin"].unique()):
        hs = [h for h in horizons if o + h <= last_year]
        if not hs or (pairs["ds"] <= o).sum() == 0:
            continue
        fold = _predict_fold(factory, pairs, hist, int(o), hs)
        r = np.log(fold["y"] + EPS) - np.log(fold["prediction"] + EPS)
        for h in hs:
            res[h].append(r[fold["horizon"] == h].to_numpy())
    empirical: dict[int, dict[str, float]] = {}
    for h in horizons:
        values = np.concatenate(res[h]) if res[h] else np.array([])
        if len(values) >= min_n:
            empirical[h] = {k: float(np.quantile(values, q)) for k, q in QUANTILES.items()}
        else:
            empirical[h] = {k: math.nan for k in QUANTILES}
        empirical[h]["n"] = len(values)
    return monotone_capped_quantiles(empirical)


def monotone_capped_quantiles(
    empirical: dict[int, dict[str, float]],
) -> dict[int, dict[str, float]]:
    """Per-horizon log offsets → the ones the forecasts use, by three documented rules:

    1. the band holds the point: ``lo ≤ 0 ≤ hi``;
    2. a horizon's offset is at most sqrt(h / h₁) times that of the shortest horizon h₁ with
       enough residuals (random-walk growth). Without it, the few origins that reach the
       longest horizons all straddle one break (drug fines, "Usage de stupéfiants (AFD)",
       from 0 before September 2020: a log residual of ≈ 5) and set the 97.5 % quantile
       alone (real regional file: a 2030 95 % high 597 times the last value);
       a horizon without enough residuals gets exactly that bound;
    3. offsets never shrink with the horizon (cumulative maximum of |offset|).

    Each horizon keeps ``n`` (its residual count) and ``capped`` (rule 2 bound it)."""
    hs = sorted(empirical)
    base = next((h for h in hs if not math.isnan(empirical[h]["hi_95"])), None)
    out: dict[int, dict[str, float]] = {}
    running = dict.fromkeys(QUANTILES, 0.0)
    for h in hs:
        row: dict[str, float] = {"n": empirical[h].get("n", 0), "capped": False}
        for k in QUANTILES:
            if base is None:
                row[k] = math.nan
                continue
            sign = -1.0 if k.startswith("lo") else 1.0
            bound = max(sign * empirical[base][k], 0.0) * math.sqrt(h / base)
            value = sign * empirical[h][k]
            value = bound if math.isnan(value) else max(value, 0.0)
            if value > bound + 1e-12:
                row["capped"] = True
            running[k] = max(running[k], min(value, bound))
            row[k] = sign * running[k]
        out[h] = row
    return out


def apply_intervals(
    frame: pd.DataFrame, quantiles: dict[int, dict[str, float]], point: str
) -> pd.DataFrame:
    """Add ``{point}_lo_80 … {point}_hi_95``: the point moved by the horizon's log offsets and
    back-transformed, ``(point + EPS)·exp(q) − EPS``, floored at 0."""
    out = frame.copy()
    for key in QUANTILES:
        q = out["horizon"].map(lambda h, key=key: quantiles[h][key]).to_numpy("float64")
        base = out[point].to_numpy("float64") + EPS
        out[f"{point}_{key}"] = np.clip(base * np.exp(q) - EPS, 0.0, None)
    return out


def interval_coverage(
    features: pd.DataFrame,
    geo_level: str,
    split: Split,
    factory,
    test: pd.DataFrame,
) -> dict[str, float]:
    """Out-of-sample coverage of the 80 / 95 % bands on ``split``'s test years: offsets
    calibrated by :func:`residual_quantiles` on targets ≤ ``split.train_end`` only, applied to
    ``test`` (the model's test predictions: y, prediction, horizon, last). Also the largest
    ratio of a 95 % high to the origin's rate, ``(hi_95 + 1) / (last + 1)``."""
    feats = features.loc[features["geo_level"] == geo_level]
    q = residual_quantiles(factory, feats, split.horizons, max_target=split.train_end)
    band = apply_intervals(test, q, "prediction")
    y = band["y"].to_numpy("float64")
    out = {}
    for level in ("80", "95"):
        lo, hi = band[f"prediction_lo_{level}"], band[f"prediction_hi_{level}"]
        out[f"coverage_{level}"] = float(np.mean((y >= lo) & (y <= hi)))
    out["max_hi95_ratio"] = float(((band["prediction_hi_95"] + 1) / (band["last"] + 1)).max())
    return out


def forecast(
    features: pd.DataFrame,
    geo_level: str,
    to_year: int = 2030,
    models: Iterable[str] | None = None,
) -> tuple[pd.DataFrame, dict[int, dict[str, float]], dict[str, Any]]:
    """Forecast every series of ``geo_level`` from its last year to ``to_year`` with 80/95 %
    intervals. The model and its hyper-parameters: the lowest validation MAE among ``models``
    over the last three origins (horizons 1..3, targets ≤ the last year)."""
    feats = features.loc[features["geo_level"] == geo_level]
    hist = history(feats)
    last_year = int(hist["year"].max())
    horizons = list(range(1, to_year - last_year + 1))
    # hyper-parameters: validate on the last years, like the h1_3 split moved to the end
    val_split = Split(
        "final", last_year, min(3, len(horizons)), tuple(range(last_year - 3, last_year))
    )
    pairs_val = make_pairs(feats, val_split.horizons, max_target=last_year)
    chosen = select_by_validation(pairs_val, hist, val_split, models)
    factory, _ = chosen[min(chosen, key=lambda k: chosen[k][1])]
    quantiles = residual_quantiles(factory, feats, horizons)
    train = make_pairs(feats, horizons, max_target=last_year)
    future = make_pairs(feats, horizons, origins=[last_year], keep_unobserved=True)
    model = factory()
    future["forecast"] = _fit_predict(model, train, future, hist)
    future = apply_intervals(future, quantiles, "forecast")
    future["model"] = model.name
    future["as_of_year"] = last_year
    future["year"] = future["ds"]
    return future, quantiles, recorded_params(model)


FORECAST_COLUMNS = [
    "run_id",
    "as_of_year",
    "geo_level",
    "geo_code",
    "geo_name",
    "indicator",
    "unit",
    "year",
    "horizon",
    "model",
    "forecast",
    "forecast_lo_80",
    "forecast_hi_80",
    "forecast_lo_95",
    "forecast_hi_95",
]
PREDICTION_COLUMNS = [
    "run_id",
    "dataset",
    "split",
    "geo_level",
    "series_id",
    "geo_code",
    "geo_name",
    "indicator",
    "unit",
    "origin_year",
    "year",
    "horizon",
    "model",
    "prediction",
    "actual",
    "prediction_count",
    "actual_count",
]


@dataclass
class AnnualRun:
    """One run's frames; ``created_at``: its start (UTC), written with every row (vintages by
    ``run_id``, as the daily tables)."""

    run_id: str
    predictions: pd.DataFrame
    metrics: pd.DataFrame
    forecasts: pd.DataFrame
    selected: dict[str, str]
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))


def run_backtests(
    features: pd.DataFrame,
    run_id: str,
    levels: Iterable[str] | None = None,
    models: Iterable[str] | None = None,
    intervals: bool = False,
):
    """Every split on every level present: (predictions, metrics, selected per dataset);
    ``intervals``: see :func:`backtest`."""
    levels = list(levels or sorted(features["geo_level"].unique()))
    models = list(models) if models is not None else None
    preds, mets, selected = [], [], {}
    for level in levels:
        for split in SPLITS:
            res = backtest(features, split, level, models, intervals)
            dataset = f"{LEVEL_DATASET[level]}_{split.name}"
            p = res.predictions.assign(run_id=run_id, dataset=dataset)
            p = p.rename(columns={"origin": "origin_year", "ds": "year_t", "y": "actual"})
            p = p.drop(columns=["year"]).rename(columns={"year_t": "year"})
            preds.append(p[PREDICTION_COLUMNS])
            mets.append(res.metrics.assign(run_id=run_id))
            selected[dataset] = res.selected
    metrics = pd.concat([m.astype({"horizon": "float64"}) for m in mets], ignore_index=True)
    return pd.concat(preds, ignore_index=True), metrics, selected


def run_annual(
    features: pd.DataFrame,
    run_id: str,
    to_year: int = 2030,
    models: Iterable[str] | None = None,
    started_at: datetime | None = None,
) -> AnnualRun:
    """Backtests on both splits and levels, then the operational forecast per level (model
    chosen on the last validation years, see :func:`forecast`). ``started_at``: the run's
    start, UTC (default: now)."""
    started_at = started_at or datetime.now(UTC).replace(tzinfo=None)
    models = list(models) if models is not None else None
    preds, mets, selected = run_backtests(features, run_id, models=models)
    fcs = []
    for level in sorted(features["geo_level"].unique()):
        fc, _, _ = forecast(features, level, to_year, models)
        selected[f"{LEVEL_DATASET[level]}_forecast"] = str(fc["model"].iloc[0])
        fcs.append(fc.assign(run_id=run_id)[FORECAST_COLUMNS])
    return AnnualRun(run_id, preds, mets, pd.concat(fcs, ignore_index=True), selected, started_at)


METRIC_COLUMNS = [
    "run_id",
    "dataset",
    "split",
    "geo_level",
    "train_end",
    "test_years",
    "model",
    "horizon",
    "mae",
    "rmse",
    "mape",
    "mae_count",
    "n",
    "validation_mae",
    "selected",
    "params",
]


#: written with every row of the three tables (a warehouse from before gets the column added)
VINTAGE_COLUMNS = ["created_at"]


def write_tables(tables: Tables, run: AnnualRun) -> dict[str, int]:
    """APPEND the run to ml.france_forecasts / france_backtest_predictions /
    france_backtest_metrics through ``tables`` (:class:`ml.tables.Tables`, one transaction):
    every run kept, readers take the latest through the serving ``*_latest`` models."""
    created = pd.Timestamp(run.created_at).as_unit("us")
    return tables.append(
        {
            name: frame[columns].assign(created_at=created)
            for name, frame, columns in (
                ("france_forecasts", run.forecasts, FORECAST_COLUMNS),
                ("france_backtest_predictions", run.predictions, PREDICTION_COLUMNS),
                ("france_backtest_metrics", run.metrics, METRIC_COLUMNS),
            )
        }
    )
