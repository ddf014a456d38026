"""ml.metrics: point metrics, Poisson median and the Poisson noise floor."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ml.metrics import (
    mae,
    noise_floor_mae,
    poisson_expected_abs_error,
    poisson_median,
    rmse,
    score,
)


def test_mae_and_rmse_on_known_inputs_ignore_missing_pairs():
    actual = [0, 1, 2, 3, 5]
    pred = [1, 1, 1, 1, np.nan]
    assert mae(actual, pred) == pytest.approx(1.0)  # (1 + 0 + 1 + 2) / 4
    assert rmse(actual, pred) == pytest.approx(math.sqrt(1.5))  # (1 + 0 + 1 + 4) / 4
    assert math.isnan(mae([np.nan], [1.0]))
    with pytest.raises(ValueError):
        mae([1, 2], [1])


def test_poisson_median_known_values():
    # P(Y=0) = exp(-λ) ≥ 1/2 iff λ ≤ ln 2 ≈ 0.693
    lam = np.array([0.0, 0.5, 0.69, 0.70, 1.0, 2.0, 10.0, np.nan])
    expected = [0, 0, 0, 1, 1, 2, 10, np.nan]
    np.testing.assert_array_equal(poisson_median(lam), expected)


def _truncated_sum(lam: float) -> float:
    """Direct definition: Σ_k |k − m| P(Y = k), summed far into the tail."""
    m = stats.poisson.ppf(0.5, lam)
    k = np.arange(0, int(stats.poisson.ppf(1 - 1e-15, lam)) + 20)
    return float(np.sum(np.abs(k - m) * stats.poisson.pmf(k, lam)))


@pytest.mark.parametrize("lam", [0.05, 0.3, 1.0, 1.5, 4.0, 12.5, 60.0])
def test_expected_abs_error_matches_direct_sum_and_monte_carlo(lam):
    exact = float(poisson_expected_abs_error([lam])[0])
    assert exact == pytest.approx(_truncated_sum(lam), abs=1e-12)

    rng = np.random.default_rng(12345)
    y = rng.poisson(lam, 400_000)
    draws = np.abs(y - poisson_median([lam])[0])
    se = draws.std() / math.sqrt(len(draws))
    assert abs(draws.mean() - exact) < 4 * se + 1e-12


def test_noise_floor_is_the_row_mean_and_ignores_missing_rates():
    lam = np.array([0.0, 1.0, 1.0, 3.0, np.nan])
    per_row = poisson_expected_abs_error(lam)
    assert per_row[0] == 0.0
    assert math.isnan(per_row[-1])
    assert noise_floor_mae(lam) == pytest.approx(np.mean(per_row[:4]))
    # λ = 1: median 1, E|Y-1| = P(0)·1 + Σ_{k≥2} (k-1)P(k) = 2·e^{-1}
    assert per_row[1] == pytest.approx(2 * math.exp(-1))


def test_score_groups_counts_scored_rows_and_averages_the_floor_over_them():
    cutoff = pd.Timestamp("2024-01-01")
    preds = pd.DataFrame(
        {
            "model": ["a", "a", "a", "b", "b", "b"],
            "horizon": [1, 1, 1, 1, 1, 1],
            "cutoff": cutoff,
            "prediction": [1.0, 2.0, np.nan, 0.0, 0.0, 0.0],
            "actual": [2.0, 2.0, 5.0, 2.0, 2.0, 5.0],
            "noise_lambda": [1.0, 2.0, 40.0, 1.0, 2.0, 40.0],
        }
    )
    out = score(preds).set_index("model")
    assert list(out.columns) == ["cutoff", "horizon", "mae", "rmse", "n", "noise_floor_mae"]
    assert out.loc["a", "n"] == 2 and out.loc["b", "n"] == 3
    assert out.loc["a", "mae"] == pytest.approx(0.5)
    assert out.loc["a", "rmse"] == pytest.approx(math.sqrt(0.5))
    assert out.loc["b", "mae"] == pytest.approx(3.0)
    assert out.loc["a", "noise_floor_mae"] == pytest.approx(noise_floor_mae([1.0, 2.0]))
    assert out.loc["b", "noise_floor_mae"] == pytest.approx(noise_floor_mae([1.0, 2.0, 40.0]))


def test_day_block_bootstrap_is_paired_and_centred_on_the_mae():
    from ml.metrics import day_block_bootstrap_mae, interval

    rng = np.random.default_rng(1)
    days = np.repeat(pd.date_range("2020-01-01", periods=84), 10)
    a = np.abs(rng.normal(1.0, 0.5, len(days)))
    reps = day_block_bootstrap_mae(days, {"a": a, "b": a + 0.25, "same": a.copy()}, n_boot=500)
    # same resamples for every model: a constant shift moves every replicate by exactly it
    np.testing.assert_allclose(reps["b"] - reps["a"], 0.25)
    np.testing.assert_allclose(reps["same"], reps["a"])
    lo, hi = interval(reps["a"])
    assert lo < a.mean() < hi
    assert abs(reps["a"].mean() - a.mean()) < 0.02
    assert hi - lo > 0


def test_day_block_bootstrap_resamples_days_not_rows():
    from ml.metrics import day_block_bootstrap_mae, interval

    # every error sits on 8 of 56 days: resampling days makes the interval wide
    days = np.repeat(pd.date_range("2020-01-01", periods=56), 20)
    err = np.where(pd.DatetimeIndex(days).day.isin([3, 4, 17, 18]), 5.0, 0.0)
    lo, hi = interval(day_block_bootstrap_mae(days, {"m": err}, block=1, n_boot=2000)["m"])
    # the point MAE is 5·8/56 ≈ 0.71; resampling rows would give about ±0.09
    assert hi - lo > 0.4


def test_mae_intervals_per_group_are_the_day_block_bootstrap_of_its_scored_rows():
    from ml.metrics import day_block_bootstrap_mae, interval, mae_intervals

    rng = np.random.default_rng(2)
    days = pd.date_range("2020-01-01", periods=42)
    rows = []
    for model, shift in (("a", 0.0), ("b", 3.0)):
        for h in (1, 7):
            actual = rng.poisson(4.0, (len(days), 5)).astype(float)
            rows.append(
                pd.DataFrame(
                    {
                        "model": model,
                        "horizon": h,
                        "ds": np.repeat(days, 5),
                        "actual": actual.ravel(),
                        "prediction": np.full(actual.size, 4.0 + shift),
                    }
                )
            )
    preds = pd.concat(rows, ignore_index=True)
    preds.loc[::9, "prediction"] = np.nan  # not scored: left out of the interval too
    got = mae_intervals(preds, ["model", "horizon"]).set_index(["model", "horizon"])
    scored = score(preds, by=["model", "horizon"]).set_index(["model", "horizon"])
    assert (got["mae_lo"] < scored["mae"]).all() and (scored["mae"] < got["mae_hi"]).all()
    g = preds[(preds["model"] == "b") & (preds["horizon"] == 7) & preds["prediction"].notna()]
    reps = day_block_bootstrap_mae(g["ds"].to_numpy(), {"m": (g["actual"] - g["prediction"]).abs()})
    np.testing.assert_allclose(got.loc[("b", 7)].to_numpy(), interval(reps["m"]))
    # a group without a scored row has no interval
    empty = preds.assign(prediction=np.where(preds["model"] == "a", np.nan, preds["prediction"]))
    assert mae_intervals(empty, ["model"]).set_index("model").loc["a"].isna().all()


def _paired_frame(shift: float = 0.0, seed: int = 5) -> pd.DataFrame:
    """Rows of a baseline ``b`` and a model ``m`` = b's prediction + ``shift``, on 56 days × 8
    series whose level changes from day to day (so days differ a lot in error)."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2021-01-01", periods=56)
    level = rng.gamma(2.0, 2.0, len(days))  # busy and quiet days
    ds = np.repeat(days, 8)
    actual = rng.poisson(np.repeat(level, 8)).astype(float)
    base = np.full(len(ds), float(np.median(actual)))
    frames = []
    for model, pred in (("b", base), ("m", base + shift)):
        frames.append(
            pd.DataFrame(
                {
                    "series_id": np.tile([f"s{i}" for i in range(8)], len(days)),
                    "ds": ds,
                    "cutoff": days[0],
                    "split": "test",
                    "horizon": 1,
                    "model": model,
                    "prediction": pred,
                    "actual": actual,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_baseline_difference_of_a_copy_of_the_baseline_is_zero_with_a_zero_interval():
    from ml.metrics import baseline_differences

    preds = _paired_frame(shift=0.0)
    ref = pd.DataFrame({"horizon": [1], "baseline_model": ["b"]})
    got = baseline_differences(preds, ["split", "model", "horizon"], ref).set_index("model")
    assert list(got.loc["m", ["diff_baseline", "diff_lo", "diff_hi"]]) == [0.0, 0.0, 0.0]
    assert got.loc["m", "baseline_model"] == "b" and got.loc["b", "diff_baseline"] == 0.0


def test_a_worse_model_has_a_positive_difference_clear_of_zero():
    from ml.metrics import baseline_differences, score

    preds = _paired_frame(shift=1.0)
    ref = pd.DataFrame({"horizon": [1], "baseline_model": ["b"]})
    got = baseline_differences(preds, ["model", "horizon"], ref).set_index("model").loc["m"]
    maes = score(preds, by=["model"]).set_index("model")["mae"]
    assert got["diff_baseline"] == pytest.approx(maes["m"] - maes["b"])
    assert 0 < got["diff_lo"] <= got["diff_baseline"] <= got["diff_hi"]


def test_the_difference_interval_resamples_the_same_days_for_both_models():
    """m's errors are b's plus 0.5 on every row: resampled on the same days, every replicate
    of the difference is 0.5; resampled independently, the busy-day noise of each MAE would
    make it as wide as the MAE intervals (about ±0.5 here)."""
    from ml.metrics import baseline_differences, mae_intervals

    preds = _paired_frame(shift=0.0)
    b = preds["model"] == "b"
    # m predicts 0.5 further from the actual than b on every row: |e| + 0.5 exactly
    sign = np.where(preds["prediction"] >= preds["actual"], 1.0, -1.0)
    preds.loc[~b, "prediction"] = preds.loc[~b, "prediction"] + 0.5 * sign[~b]
    ref = pd.DataFrame({"horizon": [1], "baseline_model": ["b"]})
    got = baseline_differences(preds, ["model", "horizon"], ref).set_index("model").loc["m"]
    assert got["diff_baseline"] == pytest.approx(0.5)
    assert got["diff_lo"] == pytest.approx(0.5) and got["diff_hi"] == pytest.approx(0.5)
    width = mae_intervals(preds, ["model"]).eval("mae_hi - mae_lo")
    assert (width > 0.3).all()  # each MAE alone is uncertain: the pairing is what removes it


def test_baseline_differences_pair_rows_both_scored_and_per_group_baseline():
    from ml.metrics import baseline_differences

    preds = pd.concat(
        [_paired_frame(1.0).assign(horizon=1), _paired_frame(2.0, seed=6).assign(horizon=7)],
        ignore_index=True,
    )
    first = preds["ds"] == preds["ds"].min()
    preds.loc[first & (preds["model"] == "b"), "prediction"] = np.nan  # b did not score day 1
    ref = pd.DataFrame({"horizon": [1, 7], "baseline_model": ["b", "m"]})
    got = baseline_differences(preds, ["model", "horizon"], ref).set_index(["model", "horizon"])
    common = preds[~first]
    at1 = common[common["horizon"] == 1]
    e = (at1["prediction"] - at1["actual"]).abs().groupby(at1["model"]).mean()
    assert got.loc[("m", 1), "diff_baseline"] == pytest.approx(e["m"] - e["b"])
    assert got.loc[("b", 7), "baseline_model"] == "m" and got.loc[("b", 7), "diff_baseline"] < 0
    # no baseline for a horizon: no row; an empty choice gives a typed empty frame
    assert baseline_differences(preds, ["model", "horizon"], ref.iloc[:1]).shape[0] == 2
    none = baseline_differences(preds, ["model", "horizon"], ref.iloc[:0])
    assert none.empty and none["horizon"].dtype == preds["horizon"].dtype


def test_best_on_validation_compares_candidates_on_common_rows_only():
    from ml.metrics import best_on_validation

    days = pd.date_range("2021-01-01", periods=10)
    b = np.r_[np.ones(9), 30.0]  # b's one bad row is a row m did not predict
    m = np.r_[np.full(9, 2.0), np.nan]
    preds = pd.concat(
        [
            pd.DataFrame(
                {"series_id": "s", "ds": days, "horizon": 1, "model": name, "prediction": pred}
            )
            for name, pred in (("b", b), ("m", m))
        ],
        ignore_index=True,
    ).assign(actual=0.0)
    # on its own rows b would lose (MAE 3.9 against 2.0); on the rows both predicted it wins
    got = best_on_validation(preds, ["b", "m", "absent"])
    assert got.to_dict("records") == [{"horizon": 1, "baseline_model": "b"}]
    assert best_on_validation(preds, ["absent"]).empty
