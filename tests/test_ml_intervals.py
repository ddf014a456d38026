"""Intervals calibrated per bin of expected count: coverage by count level, bins from the
validation rows only, the table rows the pipeline stores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.intervals import (
    add_intervals,
    assign_bins,
    bin_edges,
    calibrate,
    coverage,
    coverage_by_bin,
    lookup,
)


def _level_dependent(n: int, seed: int, split: str) -> pd.DataFrame:
    """Counts whose over-dispersion grows with the level (as on Houston and Boston): quiet
    series near Poisson, busy ones with φ ≈ 0.3."""
    rng = np.random.default_rng(seed)
    mean = rng.gamma(1.2, 2.5, n)
    phi = np.where(mean > 4, 0.3, 0.01)
    k = 1 / phi
    actual = rng.negative_binomial(k, k / (k + mean))
    return pd.DataFrame(
        {"model": "m", "horizon": 1, "prediction_mean": mean, "actual": actual, "split": split}
    )


def _by_quartile(test: pd.DataFrame, cv: pd.DataFrame) -> pd.DataFrame:
    both = pd.concat([cv, test], ignore_index=True)
    cov = coverage_by_bin(both, by=("split", "model", "horizon"))
    return cov[cov["split"] == "test"].set_index(["bin", "nominal"])["coverage"]


def test_one_calibration_misses_the_busy_bins_and_binned_calibration_covers_each():
    cv, test = _level_dependent(12000, 0, "cv"), _level_dependent(12000, 1, "test")
    pooled = _by_quartile(
        add_intervals(test, calibrate(cv, n_bins=1)), add_intervals(cv, calibrate(cv, n_bins=1))
    )
    binned_cal = calibrate(cv)
    binned = _by_quartile(add_intervals(test, binned_cal), add_intervals(cv, binned_cal))
    assert len(binned_cal) == 4 and list(binned_cal["bin"]) == ["q1", "q2", "q3", "q4"]
    # one φ / τ for all levels: the busiest quartile is under-covered
    assert pooled[("q4", 0.8)] < 0.77
    for q in ("q1", "q2", "q3", "q4"):
        assert binned[(q, 0.8)] == pytest.approx(0.8, abs=0.03), q
        assert binned[(q, 0.95)] == pytest.approx(0.95, abs=0.03), q


def test_bins_come_from_the_rows_given_and_edges_partition():
    cv = _level_dependent(4000, 2, "cv")
    cal = calibrate(cv)
    edges = bin_edges(cv["prediction_mean"])
    np.testing.assert_allclose(cal["mean_hi"].to_numpy()[:-1], edges)
    assert cal["mean_lo"].iloc[0] == 0 and np.isinf(cal["mean_hi"].iloc[-1])
    assert cal["n_calibration"].sum() == len(cv)
    # each row takes the φ of the bin of its own expected count
    got = lookup(cv, cal)
    b = assign_bins(cv["prediction_mean"], edges)
    np.testing.assert_array_equal(got["phi"].to_numpy(), cal["phi"].to_numpy()[b])


def test_few_rows_give_fewer_bins_and_ties_never_leave_a_bin_empty():
    small = _level_dependent(300, 3, "cv")
    assert len(calibrate(small)) == 1  # under 2 × 200 rows: one bin
    tied = small.assign(prediction_mean=np.where(np.arange(300) < 250, 0.5, 3.0))
    cal = calibrate(tied, min_bin_rows=10)
    assert (cal["n_calibration"] > 0).all() and len(cal) == 2


def test_coverage_by_bin_uses_validation_edges_not_test_ones():
    cv = _level_dependent(2000, 4, "cv")
    # the test window is ten times busier: binned by the validation edges, it is all in q4
    test = cv.assign(split="test", prediction_mean=cv["prediction_mean"] * 10 + 50)
    both = add_intervals(pd.concat([cv, test], ignore_index=True), calibrate(cv))
    cov = coverage_by_bin(both)
    assert set(cov.loc[cov["split"] == "test", "bin"]) == {"q4"}
    pooled = coverage(both, by=["split", "model", "horizon"])
    assert (
        cov.groupby(["split", "nominal"])["n"].sum().to_dict()
        == pooled.set_index(["split", "nominal"])["n"].to_dict()
    )
