"""Prediction intervals for daily counts: calibrated negative-binomial quantiles.

A forecast's expected count μ (the model's ``predict_mean``) is turned into a count
distribution NB(μ, φ) (variance μ + φμ²; φ = 0 is Poisson) with φ estimated by moments from
the validation (``cv``) residuals of that model and horizon. The interval at nominal level
1 − α is the INCLUSIVE integer range ``[Q(τ), Q(1 − τ)]`` of that distribution, where Q is
the quantile function (smallest k with CDF(k) ≥ q). Because counts are integers, the naive
τ = α/2 over-covers (the endpoints carry probability mass), so τ is calibrated instead: it is
the tail level whose coverage on the ``cv`` residuals is closest to nominal (a split-conformal
calibration of one scalar per model × horizon × level). Coverage is then MEASURED on the test
split, which calibration never sees.

Coverage of an integer interval for a given τ has a closed form per row:
``y ≥ Q(τ) ⇔ F(y) ≥ τ`` and ``y ≤ Q(1 − τ) ⇔ F(y − 1) < 1 − τ``, so the calibration is a
cheap scan over τ once F(y) and F(y − 1) are known.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

LEVELS: tuple[float, ...] = (0.80, 0.95)
MIN_MEAN = 0.05  # a zero expected count (e.g. a zero 7-day mean) still gets a tiny spread
_TAUS = np.unique(np.concatenate([np.geomspace(1e-4, 0.5, 400)]))


def interval_columns(levels: Sequence[float] = LEVELS) -> list[str]:
    return [f"forecast_{side}_{round(lv * 100)}" for lv in levels for side in ("lo", "hi")]


def estimate_dispersion(mean, actual) -> float:
    """Moment estimate of φ in Var(Y) = μ + φμ²: Σ((y − μ)² − μ) / Σμ², floored at 0."""
    mu = np.maximum(np.asarray(mean, dtype="float64"), MIN_MEAN)
    y = np.asarray(actual, dtype="float64")
    ok = np.isfinite(mu) & np.isfinite(y)
    if not ok.any():
        return 0.0
    num = float(np.sum((y[ok] - mu[ok]) ** 2 - mu[ok]))
    den = float(np.sum(mu[ok] ** 2))
    return max(num / den, 0.0) if den > 0 else 0.0


def _dist(mean, phi: float):
    mu = np.maximum(np.asarray(mean, dtype="float64"), MIN_MEAN)
    if phi <= 1e-9:
        return stats.poisson(mu)
    n = 1.0 / phi
    return stats.nbinom(n, n / (n + mu))


def cdf_pair(mean, actual, phi: float) -> tuple[np.ndarray, np.ndarray]:
    """F(y) and F(y − 1) of each row's NB(μ, φ)."""
    dist = _dist(mean, phi)
    y = np.asarray(actual, dtype="float64")
    return dist.cdf(y), dist.cdf(y - 1)


def coverage_for_tau(f_y: np.ndarray, f_y1: np.ndarray, tau) -> np.ndarray:
    """Fraction of rows inside ``[Q(τ), Q(1 − τ)]`` for each τ of ``tau``."""
    tau = np.atleast_1d(np.asarray(tau, dtype="float64"))
    inside = (f_y[None, :] >= tau[:, None] - 1e-12) & (f_y1[None, :] < 1 - tau[:, None] - 1e-12)
    return inside.mean(axis=1)


def calibrate_tau(f_y: np.ndarray, f_y1: np.ndarray, level: float) -> tuple[float, float]:
    """τ whose calibration coverage is closest to ``level`` (ties: the higher coverage)."""
    if len(f_y) == 0:
        return (1 - level) / 2, float("nan")
    cov = coverage_for_tau(f_y, f_y1, _TAUS)
    gap = np.abs(cov - level) - 1e-9 * cov  # prefer more coverage on ties
    i = int(np.argmin(gap))
    return float(_TAUS[i]), float(cov[i])


def quantiles(mean, phi: float, qs: Sequence[float]) -> list[np.ndarray]:
    """Count quantiles Q(q) = min{k : F(k) ≥ q} of NB(μ, φ) (Poisson when φ = 0) for each q.

    Walks the pmf recurrence k → k + 1 for all rows at once (much faster than scipy's generic
    ``ppf`` on large arrays); rows with NaN mean give NaN.
    """
    mean = np.asarray(mean, dtype="float64")
    finite = np.isfinite(mean)
    mu = np.maximum(np.where(finite, mean, MIN_MEAN), MIN_MEAN)
    qs = [float(q) for q in qs]
    out = [np.full(mu.shape, np.nan) for _ in qs]
    if phi <= 1e-9:
        pmf = np.exp(-mu)
        ratio = None
    else:
        n = 1.0 / phi
        pmf = np.exp(n * (np.log(n) - np.log(n + mu)))
        ratio = mu / (n + mu)
    cdf = pmf.copy()
    done = [np.zeros(mu.shape, dtype=bool) for _ in qs]
    k = 0
    limit = int(np.max(mu + 50 * np.sqrt(mu + phi * mu**2) + 50)) if len(mu) else 0
    while k <= limit:
        for i, q in enumerate(qs):
            hit = ~done[i] & (cdf >= q - 1e-12)
            out[i][hit] = k
            done[i] |= hit
        if all(d.all() for d in done):
            break
        pmf = pmf * mu / (k + 1) if ratio is None else pmf * (k + n) / (k + 1) * ratio
        cdf = cdf + pmf
        k += 1
    for i in range(len(qs)):
        out[i][~done[i]] = k
        out[i][~finite] = np.nan
    return out


def bounds(mean, phi: float, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive integer bounds ``[Q(τ), Q(1 − τ)]`` (NaN where the mean is NaN)."""
    lo, hi = quantiles(mean, phi, [tau, 1 - tau])
    return lo, hi


def calibrate(
    cv: pd.DataFrame, by: Sequence[str] = ("model", "horizon"), levels=LEVELS
) -> pd.DataFrame:
    """Calibration table from validation predictions (``prediction_mean``, ``actual``).

    Returns ``by`` + ``phi, n_calibration`` + per level ``tau_<p>`` and ``calibration_coverage_
    <p>`` (the in-calibration coverage, for reference; the honest number is on the test split).
    """
    rows = []
    for key, g in cv.groupby(list(by), sort=True):
        g = g[np.isfinite(g["prediction_mean"]) & np.isfinite(g["actual"])]
        key = key if isinstance(key, tuple) else (key,)
        phi = estimate_dispersion(g["prediction_mean"], g["actual"])
        f_y, f_y1 = cdf_pair(g["prediction_mean"], g["actual"], phi)
        row = {**dict(zip(by, key, strict=True)), "phi": phi, "n_calibration": len(g)}
        for lv in levels:
            tau, cov = calibrate_tau(f_y, f_y1, lv)
            row[f"tau_{round(lv * 100)}"] = tau
            row[f"calibration_coverage_{round(lv * 100)}"] = cov
        rows.append(row)
    return pd.DataFrame(rows)


def add_intervals(
    preds: pd.DataFrame,
    calibration: pd.DataFrame,
    by: Sequence[str] = ("model", "horizon"),
    mean_col: str = "prediction_mean",
    levels=LEVELS,
) -> pd.DataFrame:
    """``preds`` with ``forecast_lo_80, forecast_hi_80, forecast_lo_95, forecast_hi_95`` from
    the calibration of each row's group (NaN when the group was never calibrated)."""
    out = preds.copy()
    for col in interval_columns(levels):
        out[col] = np.nan
    cal = calibration.set_index(list(by))
    for key, idx in out.groupby(list(by), sort=False).groups.items():
        if key not in cal.index:
            continue
        c = cal.loc[key]
        mean = out.loc[idx, mean_col].to_numpy(dtype="float64")
        for lv in levels:
            p = round(lv * 100)
            lo, hi = bounds(mean, float(c["phi"]), float(c[f"tau_{p}"]))
            out.loc[idx, f"forecast_lo_{p}"] = lo
            out.loc[idx, f"forecast_hi_{p}"] = hi
    return out


def coverage(
    preds: pd.DataFrame, by: Sequence[str] = ("model", "horizon"), levels=LEVELS
) -> pd.DataFrame:
    """Empirical coverage of the inclusive integer intervals: ``by`` + ``nominal, coverage, n,
    mean_width, below, above`` (fractions of rows under the lower / over the upper bound)."""
    rows = []
    for key, g in preds.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        for lv in levels:
            p = round(lv * 100)
            lo, hi = g[f"forecast_lo_{p}"].to_numpy(), g[f"forecast_hi_{p}"].to_numpy()
            y = g["actual"].to_numpy(dtype="float64")
            ok = np.isfinite(lo) & np.isfinite(hi) & np.isfinite(y)
            if not ok.any():
                continue
            rows.append(
                {
                    **dict(zip(by, key, strict=True)),
                    "nominal": lv,
                    "coverage": float(np.mean((y[ok] >= lo[ok]) & (y[ok] <= hi[ok]))),
                    "n": int(ok.sum()),
                    "mean_width": float(np.mean(hi[ok] - lo[ok])),
                    "below": float(np.mean(y[ok] < lo[ok])),
                    "above": float(np.mean(y[ok] > hi[ok])),
                }
            )
    return pd.DataFrame(rows)
