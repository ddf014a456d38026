"""ml.models and ml.backtest.fit_frame: baselines, the XGBoost count model, leak-free fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.backtest import fit_frame
from ml.features import FEATURE_COLUMNS, build_features
from ml.metrics import poisson_median, score
from ml.models import (
    Mean7,
    Mean28,
    Median7,
    Median28,
    SeasonalNaive7,
    XGBCountModel,
    load_model,
)


def synthetic_frame(n_series: int = 6, days: int = 420, seed: int = 0) -> pd.DataFrame:
    """Poisson counts with a strong weekday pattern and per-series levels, with features."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2022-01-01", periods=days)
    weekday = np.array([0.6, 0.8, 1.0, 1.0, 1.2, 1.8, 1.6])[dates.dayofweek]
    frames = []
    for i in range(n_series):
        level = 0.5 + 0.6 * i
        frames.append(
            pd.DataFrame(
                {
                    "series_id": f"src|area{i % 3}|cat{i // 3}",
                    "ds": dates,
                    "y": rng.poisson(level * weekday),
                }
            )
        )
    return build_features(pd.concat(frames, ignore_index=True))


def one_step(frame: pd.DataFrame, cutoff, models) -> pd.DataFrame:
    """Fit each model on ``ds < cutoff``; predict every later day one step ahead (scored rows)."""
    test = frame[frame["ds"] >= pd.Timestamp(cutoff)]
    out = []
    for model in models:
        fit_frame(model, frame, before=cutoff)
        out.append(
            pd.DataFrame(
                {
                    "series_id": test["series_id"].to_numpy(),
                    "ds": test["ds"].to_numpy(),
                    "model": model.name,
                    "prediction": np.asarray(model.predict(test), dtype="float64"),
                    "actual": test["y"].to_numpy(dtype="float64"),
                    "horizon": 1,
                    "noise_lambda": test["roll_mean_28"].to_numpy(dtype="float64"),
                }
            )
        )
    return pd.concat(out, ignore_index=True)


def test_baselines_return_their_feature_columns():
    frame = synthetic_frame(n_series=2, days=60)
    for model, col in (
        (SeasonalNaive7(), "lag_7"),
        (Mean7(), "roll_mean_7"),
        (Mean28(), "roll_mean_28"),
    ):
        pred = model.fit(frame, frame["y"]).predict(frame)
        np.testing.assert_array_equal(pred, frame[col].to_numpy(dtype="float64"))
        np.testing.assert_array_equal(model.predict_mean(frame), pred)


def test_median_baselines_report_the_poisson_median_of_their_window_mean(tmp_path):
    frame = synthetic_frame(n_series=2, days=60)
    for model, col in ((Median7(), "roll_mean_7"), (Median28(), "roll_mean_28")):
        mean = frame[col].to_numpy(dtype="float64")
        pred = model.fit(frame, frame["y"]).predict(frame)
        np.testing.assert_array_equal(model.predict_mean(frame), mean)
        np.testing.assert_array_equal(pred, poisson_median(mean))  # NaN where the mean is NaN
        assert np.isnan(pred).any() and np.all(pred[~np.isnan(pred)] % 1 == 0)
        assert type(load_model(model.save(tmp_path / f"{model.name}.json"))) is type(model)


def test_xgboost_model_is_trained_on_train_rows_only():
    """Changing the test-window targets must not change the fitted model."""
    frame = synthetic_frame(n_series=3, days=200)
    cutoff = "2022-06-01"
    a = one_step(frame, cutoff, [XGBCountModel(n_estimators=50)])
    poisoned = frame.copy()
    poisoned.loc[poisoned["ds"] >= cutoff, "y"] = 1000.0
    b = one_step(poisoned, cutoff, [XGBCountModel(n_estimators=50)])
    np.testing.assert_array_equal(a["prediction"], b["prediction"])


def test_xgboost_is_deterministic_median_valued_and_beats_the_28_day_mean():
    frame = synthetic_frame()
    cutoff = "2023-01-01"
    p1 = one_step(frame, cutoff, [SeasonalNaive7(), Mean7(), Mean28(), XGBCountModel()])
    p2 = one_step(frame, cutoff, [XGBCountModel()])
    xgb1 = p1[p1.model == "xgboost"]["prediction"].to_numpy()
    np.testing.assert_array_equal(xgb1, p2["prediction"].to_numpy())
    # point forecasts are Poisson medians: non-negative integers
    assert (xgb1 >= 0).all() and np.array_equal(xgb1, np.round(xgb1))
    metrics = score(p1).set_index("model")
    # the weekday pattern is learnable: the global model beats every baseline
    assert metrics.loc["xgboost", "mae"] < metrics.loc["mean_28", "mae"] - 0.05
    assert metrics.loc["xgboost", "mae"] < metrics.loc["seasonal_naive_7", "mae"]


def test_xgboost_mean_output_is_calibrated_on_average():
    frame = synthetic_frame()
    model = XGBCountModel().fit(frame, frame["y"])
    assert model.predict_mean(frame).mean() == pytest.approx(frame["y"].mean(), rel=0.03)
    assert list(model.features) == FEATURE_COLUMNS


def test_save_and_load_round_trip(tmp_path):
    frame = synthetic_frame(n_series=2, days=80)
    model = XGBCountModel(n_estimators=30, max_depth=2).fit(frame, frame["y"])
    path = model.save(tmp_path / "m" / "xgb.json")
    again = load_model(path)
    assert isinstance(again, XGBCountModel) and again.get_params() == model.get_params()
    np.testing.assert_array_equal(again.predict(frame), model.predict(frame))
    base = load_model(Mean28().save(tmp_path / "mean28.json"))
    assert isinstance(base, Mean28)
