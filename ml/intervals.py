"""Prediction intervals for daily counts: calibrated negative-binomial quantiles.

A forecast's expected count μ (the model's ``predict_mean``) is turned into a count
distribution NB(μ, φ) (variance μ + φμ²; φ = 0 is Poisson) with φ estimated by moments from
the validation (``cv``) residuals of that model and horizon. The interval at nominal level
1 − α is the INCLUSIVE integer range ``[Q(τ), Q(1 − τ)]`` of that distribution, where Q is
the quantile function (smallest k with CDF(k) ≥ q). Because counts are integers, the naive
τ = α/2 over-covers (the endpoints carry probability mass), so τ is calibrated instead: it is
the tail level whose coverage on the ``cv`` residuals is closest to nominal (a split-conformal
calibration). φ and τ are fitted per BIN of expected count (quartiles of the validation
``prediction_mean`` of that model × horizon, :data:`N_BINS`): with one φ per model × horizon
the quiet series were over-covered and the busy ones, which carry most of the absolute error,
under-covered. Coverage is then MEASURED on the test split, which calibration never sees, pooled
and per bin (:func:`coverage_by_bin`, bins from the validation rows).

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


#: calibration bins per model × horizon: quartiles of the validation expected count, so the
#: busy series (which carry most of the absolute error) get their own φ and τ
N_BINS = 4
#: fewer bins when a group has fewer than this many validation rows per bin
MIN_BIN_ROWS = 200


def bin_edges(mean, n_bins: int = N_BINS) -> np.ndarray:
    """Inner edges of ``n_bins`` equal-count bins of ``mean`` (duplicates merged: ties at an
    edge would leave a bin empty). Bin i holds ``edges[i − 1] ≤ μ < edges[i]``."""
    mu = np.asarray(mean, dtype="float64")
    mu = mu[np.isfinite(mu)]
    if n_bins <= 1 or len(mu) == 0:
        return np.empty(0)
    values = np.unique(mu)
    edges = np.quantile(mu, np.arange(1, n_bins) / n_bins)
    # an edge on the smallest value would leave the first bin empty: move it to the next value
    nxt = values[np.minimum(np.searchsorted(values, edges, side="right"), len(values) - 1)]
    edges = np.unique(np.where(edges <= values[0], nxt, edges))
    return edges[edges > values[0]]


def assign_bins(mean, edges) -> np.ndarray:
    """0-based bin of each mean for the inner ``edges`` (NaN means go to bin 0)."""
    mu = np.nan_to_num(np.asarray(mean, dtype="float64"), nan=0.0)
    return np.searchsorted(np.asarray(edges, dtype="float64"), mu, side="right")


def bin_label(i: int) -> str:
    return f"q{int(i) + 1}"


def calibrate(
    cv: pd.DataFrame,
    by: Sequence[str] = ("model", "horizon"),
    levels=LEVELS,
    n_bins: int = N_BINS,
    min_bin_rows: int = MIN_BIN_ROWS,
) -> pd.DataFrame:
    """Calibration table from validation predictions (``prediction_mean``, ``actual``).

    Each ``by`` group is cut into up to ``n_bins`` bins of its validation expected count
    (equal-count bins; fewer when the group has under ``min_bin_rows`` rows per bin), and φ and
    τ are fitted per bin: one φ for all count levels under-covers the busy series and
    over-covers the quiet ones. Returns ``by`` + ``bin, mean_lo, mean_hi`` (the bin's range of
    expected counts, ``mean_lo ≤ μ < mean_hi``) + ``phi, n_calibration`` + per level
    ``tau_<p>`` and ``calibration_coverage_<p>`` (in-calibration, for reference; the honest
    number is on the test split). Pass only validation rows: nothing here knows the splits.
    """
    rows = []
    for key, g in cv.groupby(list(by), sort=True):
        g = g[np.isfinite(g["prediction_mean"]) & np.isfinite(g["actual"])]
        key = key if isinstance(key, tuple) else (key,)
        mean = g["prediction_mean"].to_numpy(dtype="float64")
        actual = g["actual"].to_numpy(dtype="float64")
        k = int(np.clip(len(g) // max(min_bin_rows, 1), 1, n_bins))
        edges = bin_edges(mean, k)
        bins = assign_bins(mean, edges)
        lows = np.concatenate([[0.0], edges])
        highs = np.concatenate([edges, [np.inf]])
        for b in range(len(edges) + 1):
            inside = bins == b
            phi = estimate_dispersion(mean[inside], actual[inside])
            f_y, f_y1 = cdf_pair(mean[inside], actual[inside], phi)
            row = {
                **dict(zip(by, key, strict=True)),
                "bin": bin_label(b),
                "mean_lo": float(lows[b]),
                "mean_hi": float(highs[b]),
                "phi": phi,
                "n_calibration": int(inside.sum()),
            }
            for lv in levels:
                tau, cov = calibrate_tau(f_y, f_y1, lv)
                row[f"tau_{round(lv * 100)}"] = tau
                row[f"calibration_coverage_{round(lv * 100)}"] = cov
            rows.append(row)
    return pd.DataFrame(rows)


def lookup(
    frame: pd.DataFrame,
    calibration: pd.DataFrame,
    by: Sequence[str] = ("model", "horizon"),
    mean_col: str = "prediction_mean",
) -> pd.DataFrame:
    """The calibration row of each row of ``frame`` (its group, then the bin of its expected
    count), aligned with ``frame``'s index; all NaN where the group was never calibrated."""
    cols = [c for c in calibration.columns if c not in by]
    out = pd.DataFrame(np.nan, index=frame.index, columns=cols, dtype="float64")
    out["bin"] = None
    if calibration.empty or frame.empty:
        return out
    cal = calibration if "bin" in calibration else calibration.assign(bin=bin_label(0))

    def tup(key):
        return key if isinstance(key, tuple) else (key,)

    groups = {tup(k): g for k, g in cal.groupby(list(by), sort=False)}
    for key, idx in frame.groupby(list(by), sort=False).groups.items():
        c = groups.get(tup(key))
        if c is None:
            continue
        c = c.reset_index(drop=True)
        edges = c["mean_hi"].to_numpy()[:-1] if "mean_hi" in c else np.empty(0)
        b = assign_bins(frame.loc[idx, mean_col].to_numpy(dtype="float64"), edges)
        picked = c.iloc[b]
        for col in cols:
            out.loc[idx, col] = picked[col].to_numpy()
    return out


def add_intervals(
    preds: pd.DataFrame,
    calibration: pd.DataFrame,
    by: Sequence[str] = ("model", "horizon"),
    mean_col: str = "prediction_mean",
    levels=LEVELS,
) -> pd.DataFrame:
    """``preds`` with ``forecast_lo_80, forecast_hi_80, forecast_lo_95, forecast_hi_95`` from
    the calibration of each row's group and expected-count bin (NaN when the group was never
    calibrated)."""
    out = preds.copy()
    for col in interval_columns(levels):
        out[col] = np.nan
    cal = lookup(out, calibration, by, mean_col)
    calibrated = cal["phi"].notna().to_numpy()
    if not calibrated.any():
        return out
    mean = out[mean_col].to_numpy(dtype="float64")
    phi = cal["phi"].to_numpy(dtype="float64")
    for lv in levels:
        p = round(lv * 100)
        tau = cal[f"tau_{p}"].to_numpy(dtype="float64")
        lo = np.full(len(out), np.nan)
        hi = np.full(len(out), np.nan)
        # one quantile walk per distinct (φ, τ): a handful per model × horizon
        pairs = pd.DataFrame({"phi": phi, "tau": tau})[calibrated]  # positional index
        for (f, t), rows in pairs.groupby(["phi", "tau"], sort=False).groups.items():
            pos = np.asarray(rows)
            lo[pos], hi[pos] = bounds(mean[pos], float(f), float(t))
        out[f"forecast_lo_{p}"] = lo
        out[f"forecast_hi_{p}"] = hi
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


def coverage_by_bin(
    preds: pd.DataFrame,
    by: Sequence[str] = ("split", "model", "horizon"),
    mean_col: str = "prediction_mean",
    n_bins: int = N_BINS,
    levels=LEVELS,
) -> pd.DataFrame:
    """:func:`coverage` per bin of expected count: ``by`` + ``bin`` (``q1`` … the quietest
    first), ``expected_lo, expected_hi`` (the bin's range) + the coverage columns.

    The bin edges of each group (``by`` without ``split``) are the quantiles of the expected
    count of its VALIDATION rows (``split == 'cv'``; all rows when there is no split), so a test
    row is binned by what was known before the test window."""
    keys = [c for c in by if c != "split"]
    parts = []
    for _key, g in preds.groupby(keys, sort=True):
        ref = g[g["split"] == "cv"] if "split" in g else g
        edges = bin_edges(ref[mean_col], n_bins)
        b = assign_bins(g[mean_col], edges)
        lows = np.concatenate([[0.0], edges])
        highs = np.concatenate([edges, [np.inf]])
        parts.append(
            g.assign(bin=[bin_label(i) for i in b], expected_lo=lows[b], expected_hi=highs[b])
        )
    if not parts:
        return pd.DataFrame(columns=[*by, "bin", "expected_lo", "expected_hi"])
    binned = pd.concat(parts)
    cov = coverage(binned, by=[*by, "bin"], levels=levels)
    ranges = binned.groupby([*keys, "bin"], sort=False)[["expected_lo", "expected_hi"]].first()
    return cov.merge(ranges.reset_index(), on=[*keys, "bin"], how="left")
