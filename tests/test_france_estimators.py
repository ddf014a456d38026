"""The annual France models (ml/annual.py) are scikit-learn estimators: API checks, clone,
get/set_params round trip, a refit of a clone gives identical forecasts, the parameters
reach the fit, the XGBoost regressor equals the former ``xgb.train`` path, and the
``params`` the tables record keep their format."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xgboost as xgb
from sklearn.base import BaseEstimator, clone, is_regressor
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)
from test_france_intervals import _growing, _mart

from ml import annual

#: every candidate of every annual model, as (label, factory)
CANDIDATES = [
    (f"{name}-{i}", factory)
    for name, factories in annual.candidate_grid().items()
    for i, factory in enumerate(factories)
]
CLASSES = [
    annual.LastValue,
    annual.Drift,
    annual.HoltDamped,
    annual.LogRatioRegressor,
    annual._RidgeImputed,
    annual.Ensemble,
]
ORIGIN = 2021


@pytest.fixture(scope="module")
def data():
    """Synthetic regional mart (three indicators, so the ridge's one-hot terms are used):
    pairs with targets ≤ the origin to fit on, the origin's horizons 1..3 to predict."""
    features = _mart(_growing(12, seed=7))
    index = features["series_id"].str.extract(r"s(\d+)\|")[0].astype(int)
    features["indicator_code"] = index % 3
    hist = annual.history(features)
    pairs = annual.make_pairs(features, [1, 2, 3], max_target=int(hist["year"].max()))
    train = pairs.loc[pairs["ds"] <= ORIGIN]
    test = pairs.loc[pairs["origin"] == ORIGIN]
    return hist.loc[hist["year"] <= ORIGIN], train, test


def fitted(model, data):
    hist, train, test = data
    if hasattr(model, "observe"):
        model.observe(hist)
    return model.fit(train, train["y"].to_numpy("float64")), test


def fitted_state(model) -> list[str]:
    return [k for k in vars(model) if k.endswith("_") and not k.startswith("_")]


def comparable(params: dict) -> dict:
    """get_params with estimator values as their repr (estimators compare by identity)."""
    return {k: repr(v) if isinstance(v, BaseEstimator | tuple) else v for k, v in params.items()}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_annual_class_is_a_scikit_learn_regressor(cls):
    model = cls()
    assert is_regressor(model)
    assert cls.get_params is BaseEstimator.get_params  # no hand-written get_params
    check_no_attributes_set_in_init(cls.__name__, model)
    check_parameters_default_constructible(cls.__name__, model)
    check_get_params_invariance(cls.__name__, model)
    check_set_params(cls.__name__, model)


@pytest.mark.parametrize(("label", "factory"), CANDIDATES, ids=[c[0] for c in CANDIDATES])
def test_a_clone_of_a_fitted_candidate_is_unfitted_and_refits_to_the_same_forecasts(
    label, factory, data
):
    model, test = fitted(factory(), data)
    if not label.startswith(("last_value", "drift")):  # the two baselines learn nothing
        assert fitted_state(model)
    copy = clone(model)
    assert type(copy) is type(model) and copy is not model
    assert comparable(copy.get_params()) == comparable(model.get_params())
    assert fitted_state(copy) == []
    again = type(model)(**model.get_params(deep=False))
    assert comparable(again.get_params()) == comparable(model.get_params())
    expected = model.predict(test)
    assert np.isfinite(expected).all()
    copy, _ = fitted(copy, data)
    np.testing.assert_array_equal(copy.predict(test), expected)


#: a parameter change per model that must change its forecasts (the parameter is used)
CHANGES = [
    (annual.Drift(1.0), {"damping": 0.5}),
    (annual.HoltDamped(0.9, 0.1, 0.5), {"phi": 0.9}),
    (annual._ridge(1.0), {"estimator__alpha": 1000.0}),
    (annual._ridge(1.0), {"weighted": False}),
    (annual._rf(10), {"estimator__min_samples_leaf": 40}),
    (annual._hgb(2, 0.05), {"estimator__max_iter": 5}),
    (annual._xgb(2, 0.05), {"estimator__n_estimators": 5}),
    (annual.Ensemble((annual.Drift(0.5), annual.LastValue())), {"members": (annual.Drift(),)}),
]


@pytest.mark.parametrize(("model", "change"), CHANGES, ids=[str(c[1]) for c in CHANGES])
def test_set_params_round_trips_and_reaches_the_fit(model, change, data):
    changed = clone(model).set_params(**change)
    got = comparable(changed.get_params())
    assert {k: got[k] for k in change} == comparable(change)
    assert comparable(model.get_params()) != got
    base, test = fitted(model, data)
    other, _ = fitted(changed, data)
    assert not np.array_equal(base.predict(test), other.predict(test))


def test_the_xgbregressor_equals_the_former_xgb_train_of_the_same_parameters(data):
    """Same trees, same forecasts as the booster the hand wrapper fitted before (xgb.train on
    a DMatrix, the same objective, seed, thread count and number of rounds)."""
    _, train, test = data
    model = annual._xgb(4, 0.05).fit(train, train["y"].to_numpy("float64"))
    assert isinstance(model.estimator_, xgb.XGBRegressor)
    params = {
        "objective": "reg:absoluteerror",
        "max_depth": 4,
        "eta": 0.05,
        "subsample": 0.8,
        "colsample_bytree": 0.8,
        "min_child_weight": 5.0,
        "tree_method": "hist",
        "seed": 0,
        "nthread": 1,
        "verbosity": 0,
    }
    target = annual._log_ratio(train["y"], train["last"])
    w = train["last"].to_numpy("float64") + annual.EPS
    d = xgb.DMatrix(model._X(train), label=target, weight=w / w.mean(), nthread=1)
    booster = xgb.train(params, d, num_boost_round=200)
    raw = booster.predict(xgb.DMatrix(model._X(test), nthread=1))
    np.testing.assert_array_equal(model.estimator_.predict(model._X(test)), raw)
    assert model.estimator_.get_booster().num_boosted_rounds() == 200


def test_the_recorded_params_keep_the_tables_format():
    """``params`` of ml.france_backtest_metrics: the keys, their order and the names the
    tables held before the models became estimators (``eta``, not ``learning_rate``)."""
    record = annual.recorded_params
    assert json.dumps(record(annual.HoltDamped(0.6, 0.3, 0.9))) == (
        '{"alpha": 0.6, "beta": 0.3, "phi": 0.9, "log": true}'
    )
    assert record(annual.LastValue()) == {} and record(annual.Drift(0.5)) == {"damping": 0.5}
    assert list(record(annual._xgb(2, 0.05))) == [
        "objective", "max_depth", "eta", "n_estimators", "subsample", "colsample_bytree",
        "min_child_weight", "weighted", "shrink",
    ]  # fmt: skip
    assert record(annual._hgb(2, 0.05)) == {
        "max_depth": 2,
        "learning_rate": 0.05,
        "max_iter": 150,
        "weighted": True,
        "shrink": 1.0,
    }
    ensemble = annual.Ensemble((annual.Drift(0.5), annual._ridge(100.0)))
    assert record(ensemble) == {
        "members": [
            {"model": "drift", "damping": 0.5},
            {"model": "ridge", "alpha": 100.0, "weighted": True, "shrink": 1.0},
        ]
    }


def test_unfitted_or_empty_models_say_what_is_missing(data):
    _, train, test = data
    with pytest.raises(RuntimeError, match="observe"):
        annual.HoltDamped().predict(test)
    with pytest.raises(ValueError, match="needs an estimator"):
        annual.LogRatioRegressor().fit(train, train["y"])
    with pytest.raises(ValueError, match="at least one member"):
        annual.Ensemble().fit(train, train["y"])
