"""The optional LSTM (extra `deep`): skipped only when torch is not importable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")

from ml.backtest import BacktestPlan, rolling_backtest  # noqa: E402
from ml.deep import LSTMCountModel  # noqa: E402
from ml.features import build_features, horizon_features  # noqa: E402
from ml.metrics import score  # noqa: E402
from ml.models import Mean28, load_model  # noqa: E402
from ml.zoo import PROFILES, profile_models  # noqa: E402


def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    dates = pd.date_range("2023-01-02", periods=200)
    weekday = np.array([0.3, 0.5, 1.0, 1.0, 1.5, 3.0, 2.5])[dates.dayofweek]
    parts = [
        pd.DataFrame({"series_id": f"s|a{i}|c", "ds": dates, "y": rng.poisson((1 + i) * weekday)})
        for i in range(3)
    ]
    return build_features(pd.concat(parts, ignore_index=True))


def test_lstm_fits_deterministically_and_round_trips(tmp_path):
    f = frame()
    fh = horizon_features(f, 7)
    train, test = fh[fh["ds"] < "2023-06-01"], fh[fh["ds"] >= "2023-06-01"]
    preds = []
    for _ in range(2):
        m = LSTMCountModel(epochs=2, hidden=16).observe(f).fit(train, train["y"])
        preds.append(m.predict_mean(test))
    np.testing.assert_array_equal(preds[0], preds[1])
    assert np.isfinite(preds[0]).all() and (preds[0] > 0).all()
    again = load_model(m.save(tmp_path / "lstm.json")).observe(f)
    np.testing.assert_allclose(again.predict_mean(test), preds[0], rtol=1e-6)
    assert "lstm" in profile_models("full") and "lstm" in PROFILES["full"]


def test_lstm_in_the_backtest_learns_the_weekly_pattern():
    f = frame()
    factory = lambda: {"lstm": LSTMCountModel(epochs=8, hidden=16), "mean_28": Mean28()}  # noqa: E731
    preds, _ = rolling_backtest(
        f, factory, "2023-07-01", BacktestPlan(horizons=(1,), n_cutoffs=4, window=7)
    )
    m = score(preds[preds["split"] == "test"], by=["model"]).set_index("model")["mae"]
    assert m["lstm"] < m["mean_28"]
