"""France annual intervals (ml/annual.py) on synthetic feature marts, no dbt: log-scale
calibration (a raw-scale one fails here), the cap against a break-dominated tail, bands that
hold the point and widen with the horizon, and calibration on years ≤ the train end only."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ml import annual

YEARS = list(range(2012, 2025))  # observed years; the mart's rows start one year later


def _mart(rates: dict[str, np.ndarray]) -> pd.DataFrame:
    """A minimal ``marts.france_annual_features``: one row per series and target year with the
    lags the naive models and :func:`annual.history` read, plus the forecast row."""
    rows = []
    for sid, y in rates.items():
        for i, year in enumerate([*YEARS[1:], YEARS[-1] + 1]):
            j = i + 1  # index of the target year in YEARS
            lag = lambda k, j=j, y=y: y[j - k] if j - k >= 0 else math.nan  # noqa: E731
            rows.append(
                {
                    "series_id": sid,
                    "geo_level": "region",
                    "year": year,
                    "is_forecast_row": j >= len(y),
                    "y": y[j] if j < len(y) else math.nan,
                    "recorded_count": y[j] * 10 if j < len(y) else math.nan,
                    "population": 1_000_000,
                    "lag_1": lag(1),
                    "lag_2": lag(2),
                    "lag_3": lag(3),
                    "roll_mean_3": np.nanmean([lag(1), lag(2), lag(3)]),
                    "count_lag_1": lag(1) * 10,
                    "population_lag_1": 1_000_000,
                    "parent_rate_lag_1": lag(1),
                    "parent_log_growth_lag_1": 0.0,
                    "national_log_growth_lag_1": 0.0,
                    "indicator_code": 0,
                }
            )
    return pd.DataFrame(rows)


def _growing(n: int, seed: int, levels=(1.0, 1000.0)) -> dict[str, np.ndarray]:
    """Series growing 10 %/year with 5 % multiplicative noise, half near ``levels[0]`` per
    100k (homicide-like), half near ``levels[1]`` (theft-like)."""
    rng = np.random.default_rng(seed)
    t = np.arange(len(YEARS))
    out = {}
    for i in range(n):
        level = levels[i % 2] * rng.uniform(0.8, 1.2)
        out[f"s{i}|{level:.0f}"] = level * 1.10**t * np.exp(rng.normal(0, 0.05, len(t)))
    return out


def _band(features: pd.DataFrame, horizons: list[int], factory=annual.LastValue):
    q = annual.residual_quantiles(factory, features, horizons)
    future = annual.make_pairs(features, horizons, origins=[YEARS[-1]], keep_unobserved=True)
    future["forecast"] = future["last"]
    return q, annual.apply_intervals(future, q, "forecast")


def test_log_scale_keeps_small_series_bands_proportionate():
    """Pooled raw-scale residuals (y − ŷ) would give a rate of ≈ 3 per 100k the error of a
    rate of ≈ 3,000: a band [0, hundreds]. On the log scale the small series' band is a
    multiple of its own level, with a lower bound above 0."""
    features = _mart(_growing(40, seed=1))
    _, band = _band(features, [1, 2, 3, 4, 5, 6])
    small = band.loc[band["last"] < 10]
    assert len(small) > 0
    assert (small["forecast_hi_95"] <= 3.0 * small["forecast"]).all()
    assert (small["forecast_lo_95"] > 0).all()
    # the raw-scale alternative this guards against: what its band would be
    train = annual.make_pairs(features, [6], max_target=YEARS[-1])
    raw_hi = np.quantile(train["y"] - train["last"], 0.975)
    assert (small["forecast"] + raw_hi > 3.0 * small["forecast"]).all()


def test_break_dominated_tail_is_capped_and_bands_widen():
    """10 % of the series jump from 0 to 200 per 100k in 2020 (like the drug fines). The few
    origins that reach h = 6 all straddle the jump, so the empirical 97.5 % log residual at
    h = 6 is ≈ 5 (a band 150× the point); the calibrated one grows like sqrt(h) from h = 1."""
    rates = _growing(36, seed=2)
    for i in range(4):
        rates[f"break{i}"] = np.where(np.array(YEARS) >= 2020, 200.0 * (1 + i / 10), 0.0)
    features = _mart(rates)
    horizons = [1, 2, 3, 4, 5, 6]
    q, band = _band(features, horizons)
    # the uncalibrated tail really is absurd (the test would pass without the break otherwise)
    train = annual.make_pairs(features, [6], max_target=YEARS[-1])
    r6 = np.log(train["y"] + 1) - np.log(train["last"] + 1)
    assert np.quantile(r6, 0.975) > 4.0
    for k in annual.QUANTILES:
        sign = -1 if k.startswith("lo") else 1
        offsets = [sign * q[h][k] for h in horizons]
        assert min(offsets) >= 0  # the band holds the point
        assert all(b >= a for a, b in zip(offsets, offsets[1:], strict=False))  # widens
        assert offsets[-1] <= offsets[0] * math.sqrt(6) + 1e-12
    assert q[6]["capped"]
    ratio = (band["forecast_hi_95"] + 1) / (band["last"] + 1)
    assert ratio.max() < 5.0


def test_horizon_without_residuals_gets_the_sqrt_bound():
    empirical = {
        1: {"lo_95": -0.4, "lo_80": -0.2, "hi_80": 0.2, "hi_95": 0.4, "n": 100},
        2: {"lo_95": -0.3, "lo_80": 0.05, "hi_80": 0.5, "hi_95": 9.0, "n": 100},
        3: {k: math.nan for k in annual.QUANTILES} | {"n": 0},
    }
    q = annual.monotone_capped_quantiles(empirical)
    assert q[2]["lo_95"] == -0.4  # never narrower than a shorter horizon
    assert q[2]["lo_80"] == -0.2  # a biased quantile (above the point) does not cross it
    assert q[2]["hi_95"] == 0.4 * math.sqrt(2)  # capped
    assert q[2]["hi_80"] == 0.2 * math.sqrt(2)
    assert q[3]["hi_95"] == 0.4 * math.sqrt(3) and q[3]["n"] == 0
    assert not q[1]["capped"] and q[2]["capped"]


def test_calibration_reads_only_years_up_to_max_target():
    """Poison every actual after 2020 (×3 and a jump): the quantiles calibrated with
    max_target = 2020 are identical; without it they move (the probe is sensitive)."""
    clean = _mart(_growing(30, seed=3))
    rates = {k: v.copy() for k, v in _growing(30, seed=3).items()}
    late = np.array(YEARS) > 2020
    for v in rates.values():
        v[late] = v[late] * 3.0
    poisoned = _mart(rates)
    assert poisoned.loc[poisoned["year"] <= 2020].equals(clean.loc[clean["year"] <= 2020])
    drift = lambda: annual.Drift(0.5)  # noqa: E731
    q1 = annual.residual_quantiles(drift, clean, [1, 2, 3], max_target=2020)
    q2 = annual.residual_quantiles(drift, poisoned, [1, 2, 3], max_target=2020)
    assert q1 == q2
    assert annual.residual_quantiles(drift, clean, [1, 2, 3]) != annual.residual_quantiles(
        drift, poisoned, [1, 2, 3]
    )


def test_backtest_coverage_is_calibrated_before_the_test_years(monkeypatch):
    """backtest(intervals=True) on a split: change the test year's actuals and every
    calibration it makes is identical (it would move if the test year reached one); the
    coverage, scored on the test year, moves."""
    calls: list[dict] = []
    original = annual.residual_quantiles

    def recording(*args, **kwargs):
        out = original(*args, **kwargs)
        calls.append(out)
        return out

    monkeypatch.setattr(annual, "residual_quantiles", recording)
    split = annual.SPLITS[0]  # train ≤ 2023, test 2024
    rates = _growing(20, seed=5)
    clean = annual.backtest(_mart(rates), split, "region", ["drift"], intervals=True)
    first, calls[:] = list(calls), []
    for v in rates.values():
        v[-1] *= 1.5  # 2024, the test year
    poisoned = annual.backtest(_mart(rates), split, "region", ["drift"], intervals=True)
    assert first and calls == first
    cover = [r.metrics.set_index("model").loc["drift", "coverage_80"] for r in (clean, poisoned)]
    assert cover[0] != cover[1]
