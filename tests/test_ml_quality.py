"""Intervals (integer bounds, calibration, coverage), champion selection, hierarchy coherence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ml.champion import add_ensemble, champion_rows, select_champions
from ml.hierarchy import aggregate
from ml.intervals import add_intervals, calibrate, coverage, interval_columns, quantiles


@pytest.mark.parametrize("phi", [0.0, 0.4])
def test_count_quantiles_equal_scipy(phi):
    mu = np.random.default_rng(1).gamma(1.0, 2.0, 5000)
    mu[3] = np.nan
    lo, hi = quantiles(mu, phi, [0.05, 0.95])
    if phi == 0:
        ref = stats.poisson(np.maximum(mu, 0.05))
    else:
        n = 1 / phi
        ref = stats.nbinom(n, n / (n + np.maximum(mu, 0.05)))
    ok = np.isfinite(mu)
    np.testing.assert_array_equal(lo[ok], ref.ppf(0.05)[ok])
    np.testing.assert_array_equal(hi[ok], ref.ppf(0.95)[ok])
    assert np.isnan(lo[3]) and np.isnan(hi[3])


def _nb_preds(n: int, seed: int, split: str) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mean = rng.gamma(2.0, 1.0, n)
    k = 3.0  # overdispersed counts: a Poisson interval would under-cover
    actual = rng.negative_binomial(k, k / (k + mean))
    return pd.DataFrame(
        {"model": "m", "horizon": 1, "prediction_mean": mean, "actual": actual, "split": split}
    )


def test_calibrated_integer_intervals_cover_close_to_nominal_out_of_sample():
    cal = calibrate(_nb_preds(6000, 0, "cv"), n_bins=1)  # one bin: tests/test_ml_intervals.py
    assert cal.loc[0, "phi"] == pytest.approx(1 / 3, abs=0.08)
    test = add_intervals(_nb_preds(6000, 1, "test"), cal)
    assert set(interval_columns()) <= set(test.columns)
    lo80, hi80 = test["forecast_lo_80"], test["forecast_hi_80"]
    lo95, hi95 = test["forecast_lo_95"], test["forecast_hi_95"]
    assert (lo80 == lo80.round()).all() and (hi95 == hi95.round()).all()  # integer bounds
    assert (lo95 <= lo80).all() and (hi80 <= hi95).all() and (lo80 <= hi80).all()
    cov = coverage(test).set_index("nominal")["coverage"]
    assert abs(cov[0.8] - 0.8) < 0.02 and abs(cov[0.95] - 0.95) < 0.015
    # the naive central τ = α/2 over-covers integer data; calibration moved τ up
    assert cal.loc[0, "tau_80"] > 0.1


def _cv_rows(errors: dict[str, dict[str, float]], days: int = 60, seed: int = 0):
    """cv rows where model m has mean absolute error errors[series][m] on each series."""
    rng = np.random.default_rng(seed)
    rows = []
    for sid, per_model in errors.items():
        actual = rng.poisson(3.0, days).astype(float)
        for model, err in per_model.items():
            noise = rng.choice([-1, 1], days) * rng.exponential(err, days)
            rows.append(
                pd.DataFrame(
                    {
                        "series_id": sid,
                        "ds": pd.date_range("2024-01-01", periods=days),
                        "cutoff": pd.Timestamp("2024-01-01"),
                        "split": "cv",
                        "horizon": 1,
                        "model": model,
                        "prediction": actual + noise,
                        "prediction_mean": actual + noise,
                        "origin": pd.date_range("2023-12-31", periods=days),
                        "actual": actual,
                        "noise_lambda": 3.0,
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)


def test_champion_is_per_series_only_when_clearly_better():
    cv = _cv_rows(
        {
            "s|a1|x": {"good": 0.5, "other": 1.0},
            "s|a2|x": {"good": 0.5, "other": 1.0},
            "s|a3|x": {"good": 0.9, "other": 0.1},  # clearly better here
            "s|a4|x": {"good": 0.80, "other": 0.79},  # a tie: stay with the source champion
        }
    )
    champs = select_champions(cv).set_index("series_id")
    assert (champs["source_champion"] == "good").all()
    assert champs.loc["s|a3|x", "model"] == "other"
    assert champs.loc["s|a3|x", "selected_by"] == "series"
    assert champs.loc["s|a4|x", "model"] == "good"
    assert champs.loc["s|a1|x", "selected_by"] == "source"


def test_champion_ignores_the_test_split_and_labels_its_rows():
    cv = _cv_rows({"s|a1|x": {"good": 0.5, "other": 1.0}})
    test = cv.assign(split="test", prediction=np.where(cv["model"] == "good", 99.0, cv["actual"]))
    champs = select_champions(pd.concat([cv, test]))
    assert champs["model"].tolist() == ["good"]  # the disastrous test rows did not matter
    rows = champion_rows(test, champs)
    assert (rows["model"] == "champion").all() and (rows["champion_model"] == "good").all()
    both = add_ensemble(cv, ["good", "other"])
    ens = both[both["model"] == "ensemble"]
    assert len(ens) == len(cv) // 2
    merged = cv.pivot_table(index="ds", columns="model", values="prediction_mean")
    np.testing.assert_allclose(
        ens.set_index("ds")["prediction_mean"].sort_index(), merged.mean(axis=1).sort_index()
    )


def test_hierarchy_levels_add_up_exactly():
    rng = np.random.default_rng(3)
    sids = [f"city|{a}|{c}" for a in ("A", "B", "C") for c in ("x", "y")]
    bottom = pd.DataFrame(
        [(s, d, rng.gamma(1.0, 2.0)) for s in sids for d in range(1, 6)],
        columns=["series_id", "horizon", "forecast_mean"],
    )
    h = aggregate(bottom, keys=["horizon"], sum_cols=["forecast_mean"])
    assert set(h["level"]) == {"area_category", "area", "category", "city"}
    b = h[h["level"] == "area_category"]
    for level, key in (("area", "area"), ("category", "category")):
        agg = h[h["level"] == level].set_index([key, "horizon"])["forecast_mean"]
        ref = b.groupby([key, "horizon"])["forecast_mean"].sum()
        np.testing.assert_allclose(agg.sort_index(), ref.sort_index(), rtol=0, atol=1e-12)
    city = h[h["level"] == "city"].set_index("horizon")["forecast_mean"]
    np.testing.assert_allclose(city, b.groupby("horizon")["forecast_mean"].sum(), atol=1e-12)
    for level in ("area", "category"):  # each level alone also sums to the city total
        tot = h[h["level"] == level].groupby("horizon")["forecast_mean"].sum()
        np.testing.assert_allclose(tot, city, atol=1e-12)
    assert h.loc[h["level"] == "city", "series_id"].unique().tolist() == ["city|*|*"]
