"""Forecasting models behind ONE estimator interface.

Every model has ``name``, ``features`` (list of columns it reads), ``fit(X, y)``,
``predict(X)`` (the POINT forecast, judged by MAE), ``predict_mean(X)`` (the expected count:
averaged by the ensemble and reported as ``forecast_mean`` by ``ml.forecast.forecast_direct``,
summed by the hierarchy and used as the centre of the prediction intervals) and ``save(path)``
(→ the written path; reloaded by :func:`load_model`). Every model is a scikit-learn estimator
(``BaseEstimator`` + ``RegressorMixin``): ``__init__`` only stores its parameters, so
``get_params``/``set_params`` and ``sklearn.clone`` come from scikit-learn, fitted state ends
in ``_``, and :func:`describe` is the JSON record of a model (class name and parameters).
``X`` is a long frame holding (at least) the :data:`ml.features.FEATURE_COLUMNS` plus
``series_id``, ``ds`` and, in the multi-horizon backtest, ``horizon`` and ``origin``
(:func:`ml.features.horizon_features`); ``y`` the daily
counts. Optional hooks, used when present:

* ``observe(history)``: local / sequence models (Holt-Winters, LSTM) get the observed long
  frame (``series_id, ds, y``) and must only use ``y`` up to each row's ``origin``;
* ``explain(X)`` → (contributions frame, one column per feature, in the model's link scale;
  base value array): per-forecast feature contributions (SHAP for XGBoost, exact for the GLM);
* ``importance()`` → {feature: value} and ``importance_type``: global importance.

Count models fit the MEAN and report the median of Poisson(mean) as the point forecast
(``point='poisson_median'``): MAE is minimised by the median, see :class:`XGBCountModel`.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from ml.features import FEATURE_COLUMNS, LAG_COLUMNS, ROLL_COLUMNS
from ml.metrics import poisson_median

#: Default ``features`` of the learned models: a tuple, as scikit-learn wants parameter
#: defaults immutable (a list passed in is kept as given).
DEFAULT_FEATURES: tuple[str, ...] = tuple(FEATURE_COLUMNS)


def describe(model) -> dict[str, Any]:
    """``{"type": class name, **parameters}``: what ``ml.model_runs.params`` and the JSON
    artifacts record of a model (scikit-learn's ``get_params(deep=False)``)."""
    return {"type": type(model).__name__, **model.get_params(deep=False)}


class _ColumnBaseline(RegressorMixin, BaseEstimator):
    """A baseline that forecasts one feature column as is (NaN where the column is NaN).
    No parameters: the column is the class's (``features`` records it)."""

    column: str = ""
    name: str = ""

    def fit(self, X: pd.DataFrame, y=None) -> _ColumnBaseline:  # nothing to learn
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return X[self.column].to_numpy(dtype="float64")

    def predict_mean(self, X: pd.DataFrame) -> np.ndarray:
        return self.predict(X)

    @property
    def features(self) -> list[str]:
        return [self.column]

    def save(self, path: str | Path) -> Path:
        """Write the (parameter-free) model description as JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**describe(self), "column": self.column}, indent=2))
        return path


class SeasonalNaive7(_ColumnBaseline):
    """Same weekday last week: ``lag_7``."""

    column = "lag_7"
    name = "seasonal_naive_7"


class Mean7(_ColumnBaseline):
    """Mean of the 7 days before the target day: ``roll_mean_7``."""

    column = "roll_mean_7"
    name = "mean_7"


class Mean28(_ColumnBaseline):
    """Mean of the 28 days before the target day: ``roll_mean_28``."""

    column = "roll_mean_28"
    name = "mean_28"


class _MedianBaseline(_ColumnBaseline):
    """The median of Poisson(window mean) as the point, the window mean as the expected count:
    the same kind of point as every count model's (a mean baseline's non-integer point is not a
    fair reference for a median model's MAE)."""

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return poisson_median(self.predict_mean(X))

    def predict_mean(self, X: pd.DataFrame) -> np.ndarray:
        return X[self.column].to_numpy(dtype="float64")


class Median7(_MedianBaseline):
    """Poisson median of the mean of the 7 days before the target day (``roll_mean_7``)."""

    column = "roll_mean_7"
    name = "median_7"


class Median28(_MedianBaseline):
    """Poisson median of the mean of the 28 days before the target day (``roll_mean_28``)."""

    column = "roll_mean_28"
    name = "median_28"


class XGBCountModel(RegressorMixin, BaseEstimator):
    """Global gradient-boosted count model over all series of a source.

    Objective and point estimate. Forecasts are judged by MAE, which the MEDIAN minimises, not
    the mean. The default fits the Poisson MEAN (``count:poisson``, log link) and reports the
    median of Poisson(mean) as the point forecast (``point='poisson_median'``); the mean itself
    stays available through :meth:`predict_mean` (for RMSE-type use, the ensemble average and
    the recursive forecast). Why the median of a fitted mean: the daily counts are close to
    Poisson, and the Poisson median is a step function of the mean that trees fit poorly from
    absolute-error gradients. The L1 (``reg:absoluteerror``) and quantile
    (``reg:quantileerror``, ``quantile_alpha``) objectives remain selectable via ``objective``.

    Historical note: this objective and the defaults below (depth 3, eta 0.03, 300 rounds,
    min_child_weight 50, no subsampling) were picked during development by hand-run
    comparisons on validation folds before the 2018-06-01 cutoff of the real Boston larceny
    file (a dozen district series): small trees with strong leaf regularisation, because deep
    trees overfit the noise of a few short daily series. No script in this repository reruns
    those comparisons, so their figures are not quoted. The measured test scores of this
    model, the baselines and the Poisson noise floor are in bench/results.md (``make bench``).

    The fit is an ``xgboost.XGBRegressor`` (``estimator_``; wrapped, not subclassed, so that
    the parameters are this model's dozen rather than XGBoost's forty, see docs/decisions.md).
    Deterministic (fixed ``seed``, hist trees, no sampling by default). ``n_jobs`` defaults
    to 1: on a shared 2-core machine, OpenMP with 2 threads was observed to be much slower
    under contention than 1 thread (an observation during development, not a benchmark).
    """

    name = "xgboost"
    importance_type = "total_gain_share"

    def __init__(
        self,
        objective: str = "count:poisson",
        point: str = "poisson_median",
        n_estimators: int = 300,
        learning_rate: float = 0.03,
        max_depth: int = 3,
        min_child_weight: float = 50.0,
        subsample: float = 1.0,
        colsample_bytree: float = 1.0,
        reg_lambda: float = 1.0,
        quantile_alpha: float = 0.5,
        seed: int = 0,
        n_jobs: int = 1,
        features: tuple[str, ...] = DEFAULT_FEATURES,
    ) -> None:
        self.objective = objective
        self.point = point
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.quantile_alpha = quantile_alpha
        self.seed = seed
        self.n_jobs = n_jobs
        self.features = features

    def _regressor(self) -> xgb.XGBRegressor:
        quantile = self.objective == "reg:quantileerror"
        extra = {"quantile_alpha": self.quantile_alpha} if quantile else {}
        return xgb.XGBRegressor(
            objective=self.objective,
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            min_child_weight=self.min_child_weight,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            reg_lambda=self.reg_lambda,
            tree_method="hist",
            random_state=self.seed,
            n_jobs=self.n_jobs,
            verbosity=0,
            **extra,
        )

    def _data(self, X: pd.DataFrame) -> pd.DataFrame:
        return X[list(self.features)].astype("float64")

    def fit(self, X: pd.DataFrame, y) -> XGBCountModel:
        y = np.asarray(y, dtype="float64")
        ok = np.isfinite(y)
        self.estimator_ = self._regressor().fit(self._data(X.loc[ok]), y[ok])
        return self

    def _matrix(self, X: pd.DataFrame) -> xgb.DMatrix:
        return xgb.DMatrix(self._data(X), missing=np.nan, nthread=self.n_jobs)

    def _raw(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(self._data(X))

    def predict_mean(self, X: pd.DataFrame) -> np.ndarray:
        """Expected count (for mean objectives; the raw output otherwise), clipped at 0."""
        return np.clip(self._raw(X), 0.0, None)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Point forecast: the raw output, or its Poisson median when ``point='poisson_median'``."""
        raw = np.clip(self._raw(X), 0.0, None)
        if self.point == "poisson_median":
            return poisson_median(raw)
        if self.point == "raw":
            return raw
        raise ValueError(f"unknown point estimate {self.point!r}")

    def explain(self, X: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """SHAP values (``pred_contribs=True``) in the log-rate (margin) scale, and the bias."""
        check_is_fitted(self, "estimator_")
        contribs = self.estimator_.get_booster().predict(self._matrix(X), pred_contribs=True)
        frame = pd.DataFrame(contribs[:, :-1], columns=list(self.features), index=X.index)
        return frame, contribs[:, -1]

    def importance(self) -> dict[str, float]:
        """Share of the total split gain per feature (features never used get 0)."""
        check_is_fitted(self, "estimator_")
        gain = self.estimator_.get_booster().get_score(importance_type="total_gain")
        total = sum(gain.values()) or 1.0
        return {f: float(gain.get(f, 0.0)) / total for f in self.features}

    def save(self, path: str | Path) -> Path:
        """Save as XGBoost JSON (``save_model``), this model's parameters in the booster attrs."""
        check_is_fitted(self, "estimator_")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.estimator_.get_booster().set_attr(crimecast_params=json.dumps(describe(self)))
        self.estimator_.save_model(str(path))
        return path

    @classmethod
    def load(cls, path: str | Path) -> XGBCountModel:
        """Load a model written by :meth:`save` (parameters are kept in the booster's attrs)."""
        regressor = xgb.XGBRegressor()
        regressor.load_model(str(path))
        params = json.loads(regressor.get_booster().attr("crimecast_params") or "{}")
        params.pop("type", None)
        if "features" in params:  # JSON has no tuples: back to the parameter's type
            params["features"] = tuple(params["features"])
        model = cls(**params)
        model.estimator_ = regressor
        return model


class _SklearnCountModel(RegressorMixin, BaseEstimator):
    """Shared plumbing of the scikit-learn count models: mean → Poisson-median point. The
    subclasses list every parameter in their ``__init__`` (scikit-learn reads the signature)."""

    name = ""
    importance_type = ""

    def _data(self, X: pd.DataFrame) -> pd.DataFrame:
        data = X[list(self.features)].astype("float64")
        empty = getattr(self, "empty_columns_", [])
        if empty:  # never observed in training (e.g. lag_364 on < 1 year): a constant
            data[empty] = 0.0
        return data

    def _make(self):
        raise NotImplementedError

    def fit(self, X: pd.DataFrame, y):
        y = np.asarray(y, dtype="float64")
        ok = np.isfinite(y)
        train = X.loc[ok, list(self.features)]
        self.empty_columns_ = [c for c in self.features if train[c].isna().all()]
        self.estimator_ = self._make()
        with threadpool_limits(1):  # OpenMP/BLAS threads thrash on a shared 2-core machine
            self.estimator_.fit(self._data(X.loc[ok]), y[ok])
        return self

    def predict_mean(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        with threadpool_limits(1):
            mean = self.estimator_.predict(self._data(X))
        return np.clip(np.asarray(mean, "float64"), 0.0, None)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        mean = self.predict_mean(X)
        return poisson_median(mean) if self.point == "poisson_median" else mean

    def save(self, path: str | Path) -> Path:
        """Pickle the fitted model (``.pkl``; scikit-learn's own persistence format)."""
        path = Path(path).with_suffix(".pkl")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(self))
        return path


class PoissonGLMModel(_SklearnCountModel):
    """Regularised Poisson GLM (log link): ``PoissonRegressor`` with an L2 penalty.

    Design: lags and rolling statistics enter as ``log1p`` (so the log-rate is linear in the log
    of the recent level: multiplicative effects), with a missing-value indicator and median
    imputation; ``day_of_week``, ``month``, ``area_code`` and ``category_code`` are one-hot
    (series levels and a weekly profile); everything standardised. The penalty ``alpha`` is
    scikit-learn's (per-sample scaled L2).
    """

    name = "poisson_glm"
    importance_type = "abs_standardised_coef"

    def __init__(
        self,
        alpha: float = 1e-3,
        max_iter: int = 300,
        point: str = "poisson_median",
        features: tuple[str, ...] = DEFAULT_FEATURES,
    ):
        self.alpha = alpha
        self.max_iter = max_iter
        self.point = point
        self.features = features

    def _make(self):
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import PoissonRegressor
        from sklearn.pipeline import FunctionTransformer, make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        counts = [c for c in self.features if c in LAG_COLUMNS + ROLL_COLUMNS]
        onehot = [
            c for c in self.features if c in ("day_of_week", "month", "area_code", "category_code")
        ]
        other = [c for c in self.features if c not in counts + onehot]
        pre = ColumnTransformer(
            [
                (
                    "counts",
                    make_pipeline(
                        FunctionTransformer(np.log1p, feature_names_out="one-to-one"),
                        SimpleImputer(strategy="median", add_indicator=True),
                        StandardScaler(),
                    ),
                    counts,
                ),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False), onehot),
                ("other", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), other),
            ],
            verbose_feature_names_out=False,
        )
        return make_pipeline(
            pre, PoissonRegressor(alpha=self.alpha, max_iter=self.max_iter, solver="lbfgs")
        )

    def _design(self, X: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        pre = self.estimator_[0]
        return pre.transform(self._data(X)), list(pre.get_feature_names_out())

    def _input_feature(self, name: str) -> str:
        """Design column → the input feature it comes from."""
        for f in sorted(self.features, key=len, reverse=True):
            if name == f or name.startswith(f + "_") or name == f"missingindicator_{f}":
                return f
        return name

    def explain(self, X: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """Exact additive contributions to the log-rate: coef × (design value − its training
        mean, which is 0 after standardisation; one-hot columns centred on their frequency)."""
        check_is_fitted(self, "estimator_")
        design, names = self._design(X)
        glm = self.estimator_[-1]
        centre = self.design_mean_
        parts = (design - centre) * glm.coef_
        frame = pd.DataFrame(0.0, index=X.index, columns=self.features)
        for j, n in enumerate(names):
            frame[self._input_feature(n)] += parts[:, j]
        base = np.full(len(X), glm.intercept_ + float(centre @ glm.coef_))
        return frame, base

    def fit(self, X: pd.DataFrame, y):
        y = np.asarray(y, dtype="float64")
        ok = np.isfinite(y)
        train = X.loc[ok, list(self.features)]
        self.empty_columns_ = [c for c in self.features if train[c].isna().all()]
        self.estimator_ = self._make()
        with threadpool_limits(1):
            design = self.estimator_[0].fit_transform(self._data(X.loc[ok]))
            self.estimator_[-1].fit(design, y[ok])
        self.design_mean_ = design.mean(axis=0)
        return self

    def importance(self) -> dict[str, float]:
        """Sum of |coef| × std of each design column, per input feature, as shares."""
        glm = self.estimator_[-1]
        pre = self.estimator_[0]
        names = list(pre.get_feature_names_out())
        out = dict.fromkeys(self.features, 0.0)
        for n, c in zip(names, glm.coef_, strict=True):
            out[self._input_feature(n)] += abs(float(c))
        total = sum(out.values()) or 1.0
        return {k: v / total for k, v in out.items()}


class RandomForestCountModel(_SklearnCountModel):
    """Random forest of squared-error trees on the count (its mean), Poisson-median point.

    Large leaves (``min_samples_leaf``) because the target is mostly noise at the daily level.
    """

    name = "random_forest"
    importance_type = "impurity_share"

    def __init__(
        self,
        n_estimators: int = 100,
        min_samples_leaf: int = 40,
        max_features: float = 0.5,
        max_depth: int | None = 12,
        seed: int = 0,
        n_jobs: int = 1,
        point: str = "poisson_median",
        features: tuple[str, ...] = DEFAULT_FEATURES,
    ):
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_depth = max_depth
        self.seed = seed
        self.n_jobs = n_jobs
        self.point = point
        self.features = features

    def _make(self):
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(
            n_estimators=self.n_estimators,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            max_depth=self.max_depth,
            random_state=self.seed,
            n_jobs=self.n_jobs,
        )

    def importance(self) -> dict[str, float]:
        values = self.estimator_.feature_importances_
        return {f: float(v) for f, v in zip(self.features, values, strict=True)}


class HistGBCountModel(_SklearnCountModel):
    """scikit-learn histogram gradient boosting with the Poisson loss (log link)."""

    name = "hist_gbm"

    def __init__(
        self,
        max_iter: int = 300,
        learning_rate: float = 0.03,
        max_depth: int = 3,
        min_samples_leaf: int = 50,
        l2_regularization: float = 1.0,
        seed: int = 0,
        point: str = "poisson_median",
        features: tuple[str, ...] = DEFAULT_FEATURES,
    ):
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.seed = seed
        self.point = point
        self.features = features

    def _make(self):
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(
            loss="poisson",
            max_iter=self.max_iter,
            learning_rate=self.learning_rate,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=False,
            random_state=self.seed,
        )


BASELINES = {m.name: m for m in (SeasonalNaive7, Mean7, Mean28, Median7, Median28)}


def load_model(path: str | Path):
    """Load any model saved by this module's ``save`` methods (or :mod:`ml.ets`/:mod:`ml.deep`)."""
    path = Path(path)
    if path.suffix == ".pkl":
        return pickle.loads(path.read_bytes())
    if path.suffix == ".pt":
        from ml.deep import LSTMCountModel

        return LSTMCountModel.load(path)
    spec = json.loads(path.read_text())
    if isinstance(spec, dict) and spec.get("type") in {c.__name__ for c in BASELINES.values()}:
        return next(c for c in BASELINES.values() if c.__name__ == spec["type"])()
    if isinstance(spec, dict) and spec.get("type") == "HoltWintersModel":
        from ml.ets import HoltWintersModel

        return HoltWintersModel.load(path)
    return XGBCountModel.load(path)
