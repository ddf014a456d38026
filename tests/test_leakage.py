"""Poisoning probe: the test window's actuals are changed (scaled and shuffled) and every
thing chosen or fitted before the test window must stay bit-identical — the champions, the
ensemble members, every calibration (φ, τ, bins) and every prediction made from an origin
before the change. A pipeline that let the test rows into model choice or calibration fails
here (checked by mutation: ``calibrate(preds)`` instead of ``calibrate(cv)`` in ml/pipeline.py).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

import ml.pipeline as pipeline
from ml.backtest import BacktestPlan
from ml.features import build_features
from ml.intervals import calibrate
from ml.pipeline import RunConfig, run_source

DAYS = 420
START = pd.Timestamp("2023-01-01")
CUTOFF = START + pd.Timedelta(days=DAYS - 42)
LEVELS = {"A|x": 0.4, "A|y": 1.5, "B|x": 3.0, "B|y": 6.0, "C|x": 10.0}


def _long(poison: bool) -> pd.DataFrame:
    rng, shuffle = np.random.default_rng(7), np.random.default_rng(8)
    ds = pd.date_range(START, periods=DAYS)
    week = 1 + 0.3 * np.sin(2 * np.pi * ds.dayofweek / 7)
    parts = []
    for key, level in LEVELS.items():
        mu = level * week
        y = rng.negative_binomial(4, 4 / (4 + mu)).astype(float)
        if poison:  # the test window only: ×3 and shuffled across its days
            late = ds >= CUTOFF
            y[late] = shuffle.permutation(y[late]) * 3
        parts.append(pd.DataFrame({"series_id": f"town|{key}", "ds": ds, "y": y}))
    return pd.concat(parts, ignore_index=True)


def _run(poison: bool, monkeypatch) -> tuple[dict, dict, list[pd.DataFrame]]:
    calls: list[pd.DataFrame] = []

    def recording(*args, **kwargs):
        out = calibrate(*args, **kwargs)
        calls.append(out)
        return out

    monkeypatch.setattr(pipeline, "calibrate", recording)
    config = RunConfig(
        run_id="probe",
        test_cutoff=CUTOFF.date(),
        horizon=7,
        profile="lean",
        models=[
            "seasonal_naive_7",
            "mean_7",
            "mean_28",
            "median_7",
            "median_28",
            "poisson_glm",
            "xgboost",
        ],
        plan=BacktestPlan(horizons=(1, 7), n_cutoffs=2, window=28, train_days=150),
        started_at=pd.Timestamp("2024-03-01").to_pydatetime(),
    )
    frames, summary = run_source(
        "town", build_features(_long(poison)), [date(2023, 12, 25)], config, log=lambda _m: None
    )
    return frames, summary, calls


@pytest.fixture(scope="module")
def runs():
    mp = pytest.MonkeyPatch()
    try:
        clean = _run(False, mp)
        poisoned = _run(True, mp)
    finally:
        mp.undo()
    return clean, poisoned


def test_the_poison_changed_the_test_window(runs):
    (clean, _, _), (poisoned, _, _) = runs
    a = clean["backtest_predictions"]
    b = poisoned["backtest_predictions"]
    late = a["split"] == "test"
    assert not np.array_equal(a.loc[late, "actual"], b.loc[late, "actual"])
    # the test score moved: the probe is not a no-op
    assert (
        not clean["leaderboard"]
        .query("split == 'test'")["mae"]
        .equals(poisoned["leaderboard"].query("split == 'test'")["mae"])
    )


def test_champions_and_ensemble_members_are_identical(runs):
    (clean, s1, _), (poisoned, s2, _) = runs
    pd.testing.assert_frame_equal(clean["champions"], poisoned["champions"])
    assert s1["ensemble_members"] == s2["ensemble_members"] and s1["ensemble_members"]


def test_the_reference_baseline_is_chosen_before_the_test_window(runs):
    (clean, _, _), (poisoned, _, _) = runs
    cols = ["split", "cutoff", "model", "horizon", "baseline_model"]
    a, b = (f["backtest_metrics"][cols].reset_index(drop=True) for f in (clean, poisoned))
    assert a["baseline_model"].notna().all()
    pd.testing.assert_frame_equal(a, b)


def test_every_calibration_is_identical(runs):
    (clean, _, c1), (poisoned, _, c2) = runs
    assert len(c1) == len(c2) >= 2  # per model × horizon, and per hierarchy level
    for a, b in zip(c1, c2, strict=True):
        pd.testing.assert_frame_equal(a, b)
    # the stored τ / φ and the validation coverage (bins from the validation rows)
    cv_a = clean["interval_coverage"].query("split == 'cv'").reset_index(drop=True)
    cv_b = poisoned["interval_coverage"].query("split == 'cv'").reset_index(drop=True)
    pd.testing.assert_frame_equal(cv_a, cv_b)


def test_every_prediction_from_an_origin_before_the_change_is_identical(runs):
    (clean, _, _), (poisoned, _, _) = runs
    cols = [
        "series_id",
        "split",
        "cutoff",
        "date",
        "horizon",
        "model",
        "origin",
        "prediction",
        "prediction_mean",
        "forecast_lo_80",
        "forecast_hi_80",
        "forecast_lo_95",
        "forecast_hi_95",
        "champion_model",
    ]

    def before(frame):
        bp = frame["backtest_predictions"]
        keep = pd.to_datetime(bp["origin"]) < CUTOFF
        return bp.loc[keep, cols].sort_values(cols[:7]).reset_index(drop=True)

    a, b = before(clean), before(poisoned)
    assert (a["split"] == "test").any() and (a["split"] == "cv").any()
    pd.testing.assert_frame_equal(a, b)
    leader = ["split", "model", "horizon", "mae", "coverage_80", "coverage_95"]
    pd.testing.assert_frame_equal(
        clean["leaderboard"].query("split == 'cv'")[leader].reset_index(drop=True),
        poisoned["leaderboard"].query("split == 'cv'")[leader].reset_index(drop=True),
    )
