"""The daily models are scikit-learn estimators: clone, get/set_params, fit of a clone, and
the XGBoost wrapper equals a plain ``xgb.train`` of the same parameters."""

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
from test_ml_zoo import synthetic

from ml.features import FEATURE_COLUMNS, horizon_features
from ml.models import XGBCountModel, describe
from ml.pipeline import Ensemble
from ml.zoo import BASELINE_NAMES, make_model, profile_models

#: every daily zoo model (the LSTM when torch is installed, as the ``full`` profile runs it)
NAMES = profile_models("full")
#: a parameter per learned model that must change its forecasts (the parameter is used)
CHANGES = {
    "poisson_glm": {"alpha": 1.0},
    "random_forest": {"min_samples_leaf": 400},
    "hist_gbm": {"max_iter": 5},
    "xgboost": {"n_estimators": 5},
    "holt_winters": {"max_train_days": 20},
    "lstm": {"epochs": 1},
}


@pytest.fixture(scope="module")
def data():
    frame = synthetic(n_series=4, days=240)
    fh = horizon_features(frame, 7)
    train, test = fh[fh["ds"] < "2023-07-01"], fh[fh["ds"] >= "2023-07-01"]
    return frame, train, test


def fitted(model, data):
    frame, train, test = data
    if hasattr(model, "observe"):
        model.observe(frame)
    model.fit(train, train["y"].to_numpy())
    return model, test


def fitted_state(model) -> list[str]:
    """Attributes following the fitted-state convention (trailing underscore)."""
    return [k for k in vars(model) if k.endswith("_") and not k.startswith("_")]


def make(name: str):
    return Ensemble(("poisson_glm", "xgboost")) if name == "ensemble" else make_model(name, "lean")


@pytest.mark.parametrize("name", [*NAMES, "ensemble"])
def test_sklearn_api_checks(name):
    model = make(name)
    assert is_regressor(model) or name == "ensemble"  # the ensemble record does not predict
    # parameters come from the __init__ signature, not from a hand-written get_params
    assert type(model).get_params is BaseEstimator.get_params
    check_no_attributes_set_in_init(name, model)
    check_parameters_default_constructible(name, model)
    check_get_params_invariance(name, model)
    check_set_params(name, model)


@pytest.mark.parametrize("name", NAMES)
def test_a_clone_of_a_fitted_model_is_unfitted_and_refits_to_the_same_forecasts(name, data):
    model, test = fitted(make_model(name, "lean"), data)
    if name not in BASELINE_NAMES:  # baselines learn nothing
        assert fitted_state(model)
    copy = clone(model)
    assert type(copy) is type(model) and copy is not model
    assert copy.get_params() == model.get_params()
    assert fitted_state(copy) == []
    copy, _ = fitted(copy, data)
    np.testing.assert_array_equal(copy.predict(test), model.predict(test))
    np.testing.assert_array_equal(copy.predict_mean(test), model.predict_mean(test))


@pytest.mark.parametrize("name", sorted(set(CHANGES) & set(NAMES)))
def test_set_params_round_trips_and_the_parameter_reaches_the_fit(name, data):
    model = make_model(name, "lean")
    params = model.get_params()
    again = type(model)(**params)
    assert again.get_params() == params
    changed = clone(model).set_params(**CHANGES[name])
    assert changed.get_params() == {**params, **CHANGES[name]}
    base, test = fitted(model, data)
    other, _ = fitted(changed, data)
    assert not np.array_equal(base.predict_mean(test), other.predict_mean(test))


@pytest.mark.parametrize("name", [*NAMES, "ensemble"])
def test_describe_is_the_class_and_its_json_parameters(name):
    model = make(name)
    record = describe(model)
    assert record == {"type": type(model).__name__, **model.get_params(deep=False)}
    json.dumps(record, allow_nan=False)  # raises on anything JSON cannot hold


def test_a_features_subset_is_a_parameter_the_fit_uses(data):
    cols = ("lag_7", "roll_mean_28", "day_of_week")
    model, test = fitted(XGBCountModel(n_estimators=20, features=cols), data)
    contrib, _ = model.explain(test)
    assert list(contrib.columns) == list(cols) == list(clone(model).features)
    assert model.estimator_.get_booster().feature_names == list(cols)


def test_the_xgbregressor_fit_equals_a_plain_xgb_train_of_the_same_parameters(data):
    """The wrapper changes nothing: same trees, predictions and SHAP values as the booster
    ``xgb.train`` fits from the parameters the model had before it became an estimator."""
    frame, train, test = data
    model = XGBCountModel(n_estimators=60, learning_rate=0.1, min_child_weight=5.0)
    model.fit(train, train["y"].to_numpy())
    assert isinstance(model.estimator_, xgb.XGBRegressor)
    params = {
        "objective": "count:poisson",
        "eta": 0.1,
        "max_depth": 3,
        "min_child_weight": 5.0,
        "subsample": 1.0,
        "colsample_bytree": 1.0,
        "lambda": 1.0,
        "tree_method": "hist",
        "seed": 0,
        "nthread": 1,
        "verbosity": 0,
    }
    cols = list(FEATURE_COLUMNS)
    dtrain = xgb.DMatrix(train[cols].astype("float64"), label=train["y"].astype("float64"))
    booster = xgb.train(params, dtrain, num_boost_round=60)
    dtest = xgb.DMatrix(test[cols].astype("float64"))
    expected = np.clip(booster.predict(dtest), 0, None)
    np.testing.assert_array_equal(model.predict_mean(test), expected)
    contrib, base = model.explain(test)
    raw = booster.predict(dtest, pred_contribs=True)
    np.testing.assert_array_equal(contrib.to_numpy(), raw[:, :-1])
    np.testing.assert_array_equal(base, raw[:, -1])


def test_model_runs_record_each_model_class_and_parameters():
    """``ml.model_runs.params`` of a pipeline run: the class name and scikit-learn parameters
    of the model that was fitted (its features in their own column), the ensemble's members."""
    from datetime import date

    from ml.backtest import BacktestPlan
    from ml.pipeline import RunConfig, run_source

    names = ["mean_28", "poisson_glm", "xgboost"]
    config = RunConfig(
        run_id="params",
        test_cutoff=date(2023, 8, 1),
        horizon=7,
        profile="lean",
        models=names,
        plan=BacktestPlan(horizons=(1, 7), n_cutoffs=1, window=7),
    )
    frames, summary = run_source("src", synthetic(), [], config, log=lambda _m: None)
    runs = frames["model_runs"]
    assert set(runs["model"]) == {*names, "ensemble"}
    for row in runs.itertuples():
        params = json.loads(row.params)
        if row.model == "ensemble":
            members = summary["ensemble_members"][row.horizon]
            assert params == {
                "type": "Ensemble",
                "members": members,
                "combine": "mean of expected counts",
            }
            continue
        expected = describe(make_model(row.model, "lean"))
        features = list(expected.pop("features", make_model(row.model).features))
        assert params == expected, row.model
        assert json.loads(row.features) == features
