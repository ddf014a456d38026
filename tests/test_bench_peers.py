"""The benchmark's peer adapter (bench/peers.py) keeps crimecast's test protocol: each target
day is predicted only from what was known at its origin (target − h), on the same rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench import peers

pytestmark = pytest.mark.skipif(
    not peers.available(), reason="the [peers] extra is not installed (.ci/run installs it)"
)

CUTOFF = pd.Timestamp("2020-06-01")
#: small boosters: the test checks the protocol, not the accuracy
TINY = (
    {"num_leaves": 4, "n_estimators": 10, "learning_rate": 0.1, "min_child_samples": 5},
    {"num_leaves": 8, "n_estimators": 20, "learning_rate": 0.1, "min_child_samples": 5},
)


def _counts(days: int = 172, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2020-01-01", periods=days, freq="D")
    frames = []
    for i, rate in enumerate((0.8, 2.0, 4.5)):
        weekly = 1 + 0.3 * np.sin(2 * np.pi * ds.dayofweek / 7)
        frames.append(
            pd.DataFrame({"unique_id": f"s{i}", "ds": ds, "y": rng.poisson(rate * weekly)})
        )
    out = pd.concat(frames, ignore_index=True)
    out["y"] = out["y"].astype("float64")
    return out


def _origins_before(frame: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame:
    origin = frame["ds"] - pd.to_timedelta(frame["horizon"], unit="D")
    return frame.loc[(origin < day).to_numpy()].sort_values(["model", "unique_id", "ds", "horizon"])


def test_statsforecast_peers_see_only_the_history_up_to_each_origin():
    y = _counts()
    end = y["ds"].max()
    got = peers.statsforecast_predictions(y, CUTOFF, end, horizons=(1, 7))
    # the same target rows as crimecast's test split: every day from cutoff + h − 1 to the end
    for h in (1, 7):
        rows = got.loc[(got["horizon"] == h) & (got["model"] == "sf_auto_ets")]
        assert rows["ds"].min() == CUTOFF + pd.Timedelta(days=h - 1)
        assert rows["ds"].max() == end
        assert len(rows) == 3 * ((end - CUTOFF).days - h + 2)
    # poison the last 20 days: nothing predicted from an earlier origin may move
    changed = pd.Timestamp("2020-06-12")
    poisoned = y.copy()
    poisoned.loc[poisoned["ds"] >= changed, "y"] = 40.0
    again = peers.statsforecast_predictions(poisoned, CUTOFF, end, horizons=(1, 7))
    before = _origins_before(got, changed)
    after = _origins_before(again, changed)
    np.testing.assert_allclose(
        before["prediction_mean"].to_numpy(), after["prediction_mean"].to_numpy()
    )
    late = again.loc[(again["ds"] - pd.to_timedelta(again["horizon"], unit="D")) >= changed]
    assert late["prediction_mean"].mean() > 10  # and the poisoned history is used after it


def test_lightgbm_peer_is_configured_before_the_cutoff_and_leak_free():
    y = _counts(seed=1)
    end = y["ds"].max()
    got, chosen = peers.mlforecast_predictions(y, CUTOFF, end, horizons=(1,), configs=TINY)
    assert set(chosen) == {1} and chosen[1] in [dict(c) for c in TINY]
    assert got["ds"].min() == CUTOFF and got["ds"].max() == end
    # test-window actuals changed: the configuration chosen on validation does not move
    poisoned = y.copy()
    poisoned.loc[poisoned["ds"] >= CUTOFF, "y"] = 0.0
    again, chosen_again = peers.mlforecast_predictions(
        poisoned, CUTOFF, end, horizons=(1,), configs=TINY
    )
    assert chosen_again == chosen
    first_day = got.loc[got["ds"] == CUTOFF].sort_values("unique_id")
    again_first = again.loc[again["ds"] == CUTOFF].sort_values("unique_id")
    # the first test day's origin is the day before the cutoff: unchanged history
    np.testing.assert_allclose(
        first_day["prediction_mean"].to_numpy(), again_first["prediction_mean"].to_numpy()
    )
