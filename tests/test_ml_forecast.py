"""ml.forecast.forecast_recursive: shapes, recursion, feature consistency, determinism."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from ml.features import FEATURE_COLUMNS, build_features
from ml.forecast import FORECAST_COLUMNS, forecast_recursive
from ml.models import Mean7, SeasonalNaive7, XGBCountModel


def history(days: int = 400, seed: int = 1, ends: dict[str, int] | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2023-01-01", periods=days)
    frames = []
    for i, sid in enumerate(["src|a|x", "src|b|x", "src|a|y"]):
        n = days - (ends or {}).get(sid, 0)
        frames.append(pd.DataFrame({"series_id": sid, "ds": dates[:n], "y": rng.poisson(1 + i, n)}))
    return pd.concat(frames, ignore_index=True)


class Recorder:
    name = "recorder"

    def __init__(self, inner):
        self.inner = inner
        self.seen: list[pd.DataFrame] = []

    def predict(self, X):
        self.seen.append(X.copy())
        return self.inner.predict(X)


def test_shapes_horizons_dates_and_plausible_values():
    hist = history()
    model = XGBCountModel(n_estimators=50).fit(build_features(hist), hist["y"])
    out = forecast_recursive(hist, model, horizon=28)
    assert list(out.columns) == FORECAST_COLUMNS
    assert len(out) == 3 * 28
    last = hist["ds"].max()
    values = out["forecast"].to_numpy()
    assert np.isfinite(values).all()
    # the default point forecast is the Poisson median of the expected count: a whole number
    np.testing.assert_array_equal(values, np.round(values))
    for sid, g in out.groupby("series_id"):
        assert g["horizon"].tolist() == list(range(1, 29))
        assert (g["ds"] == last + pd.to_timedelta(g["horizon"], unit="D")).all()
        y = hist.loc[hist.series_id == sid, "y"]
        assert g["forecast"].max() <= y.max()  # never beyond what the series has seen
        assert 0.5 * y.mean() < g["forecast"].mean() < 2 * y.mean()
    # the pooled level matches the history's (rates 1, 2 and 3 → mean ≈ 2)
    assert out["forecast"].mean() == pytest.approx(hist["y"].mean(), rel=0.25)
    assert (out["model"] == "xgboost").all()
    again = forecast_recursive(hist, model, horizon=28)
    pd.testing.assert_frame_equal(out, again)


def test_predictions_feed_later_lags():
    hist = history(days=60)
    out = forecast_recursive(hist, SeasonalNaive7(), horizon=14)
    for sid, g in out.groupby("series_id"):
        last_week = hist[hist.series_id == sid]["y"].to_numpy()[-7:].astype(float)
        np.testing.assert_array_equal(g["forecast"].to_numpy(), np.tile(last_week, 2))


def test_rolling_mean_recursion_by_hand():
    hist = history(days=40)
    out = forecast_recursive(hist, Mean7(), horizon=3)
    for sid, g in out.groupby("series_id"):
        vals = list(hist[hist.series_id == sid]["y"].to_numpy()[-7:].astype(float))
        for f in g["forecast"]:
            expected = sum(vals[-7:]) / 7
            assert f == pytest.approx(expected)
            vals.append(expected)


def test_forecast_features_equal_build_features_on_the_extended_frame():
    hist = history(days=380)
    holidays = {date(2024, 1, 16)}
    rec = Recorder(Mean7())
    forecast_recursive(hist, rec, horizon=2, holidays=holidays)
    first = rec.seen[0].sort_values("series_id").reset_index(drop=True)
    ext = pd.concat(
        [hist, pd.DataFrame({"series_id": first["series_id"], "ds": first["ds"], "y": np.nan})]
    )
    ref = build_features(ext, holidays)
    ref = ref[ref["ds"] == first["ds"].iloc[0]].sort_values("series_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(first[FEATURE_COLUMNS], ref[FEATURE_COLUMNS], check_dtype=False)
    assert first["ds"].iloc[0] == pd.Timestamp("2024-01-16")
    assert (first["is_holiday"] == 1).all()


def test_series_ending_on_different_days_are_each_forecast_from_their_own_end():
    hist = history(days=50, ends={"src|b|x": 3})
    out = forecast_recursive(hist, Mean7(), horizon=5)
    firsts = out[out.horizon == 1].set_index("series_id")["ds"]
    assert firsts["src|a|x"] == pd.Timestamp("2023-02-20")
    assert firsts["src|b|x"] == pd.Timestamp("2023-02-17")
    assert out["forecast"].notna().all()
    with pytest.raises(ValueError):
        forecast_recursive(hist, Mean7(), horizon=0)
