"""Point-forecast metrics and the Poisson reference (model-based, not a floor)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats


def mae(actual, prediction) -> float:
    """Mean absolute error over pairs where both values are finite (NaN if none)."""
    a, p = _pairs(actual, prediction)
    return float(np.mean(np.abs(a - p))) if len(a) else float("nan")


def rmse(actual, prediction) -> float:
    """Root mean squared error over pairs where both values are finite (NaN if none)."""
    a, p = _pairs(actual, prediction)
    return float(np.sqrt(np.mean((a - p) ** 2))) if len(a) else float("nan")


def _pairs(actual, prediction) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(actual, dtype="float64")
    p = np.asarray(prediction, dtype="float64")
    if a.shape != p.shape:
        raise ValueError("actual and prediction differ in shape")
    ok = np.isfinite(a) & np.isfinite(p)
    return a[ok], p[ok]


def poisson_median(lam) -> np.ndarray:
    """Median of Poisson(λ): the smallest k with P(Y ≤ k) ≥ 1/2 (0 for λ = 0; NaN kept)."""
    lam = np.asarray(lam, dtype="float64")
    out = np.full(lam.shape, np.nan)
    ok = np.isfinite(lam) & (lam >= 0)
    out[ok] = stats.poisson.ppf(0.5, lam[ok])
    out[ok & (lam == 0)] = 0.0
    return out


def poisson_expected_abs_error(lam) -> np.ndarray:
    """E|Y − median(Poisson(λ))| for Y ~ Poisson(λ), elementwise (NaN for NaN/negative λ).

    Exact, with a finite sum: for m = median, E|Y − m| = (λ − m) + 2·Σ_{k<m} (m − k)·P(Y = k),
    because |Y − m| = (Y − m) + 2·max(m − Y, 0). Evaluated once per distinct λ (trailing means
    take few distinct values).
    """
    lam = np.asarray(lam, dtype="float64")
    out = np.full(lam.shape, np.nan)
    ok = np.isfinite(lam) & (lam >= 0)
    if not ok.any():
        return out
    uniq, inverse = np.unique(lam[ok], return_inverse=True)
    med = poisson_median(uniq)
    values = np.empty_like(uniq)
    for i, (lam_i, m) in enumerate(zip(uniq, med, strict=True)):
        k = np.arange(int(m))
        below = float(np.sum((m - k) * stats.poisson.pmf(k, lam_i))) if len(k) else 0.0
        values[i] = lam_i - m + 2.0 * below
    out[ok] = values[inverse]
    return out


def noise_floor_mae(lam) -> float:
    """Expected MAE of a perfect Poisson forecaster: mean over rows of E|Y − median(Poisson(λ))|.

    ``lam`` is the per-row Poisson rate; the contract uses the trailing 28-day mean
    (``roll_mean_28``). Rows with NaN λ are ignored.
    """
    values = poisson_expected_abs_error(lam)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else float("nan")


METRIC_COLUMNS = ["mae", "rmse", "n", "noise_floor_mae"]


def score(predictions: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Metrics per group of a predictions long frame.

    ``predictions`` needs ``model``, ``horizon``, ``prediction``, ``actual`` and, for the noise
    floor, ``noise_lambda`` (the backtest adds it: the row's ``roll_mean_28``). Groups default to
    ``cutoff, model, horizon`` (``cutoff`` only when present). Rows whose prediction or actual is
    missing are not scored; ``n`` counts the scored rows and the Poisson reference is averaged over
    those same rows (ignoring rows without a λ).

    Returns columns ``by + [mae, rmse, n, noise_floor_mae]``. Vectorised: the per-row expected
    absolute error of the Poisson reference is computed once, then averaged per group.
    """
    if by is None:
        by = (["cutoff"] if "cutoff" in predictions.columns else []) + ["model", "horizon"]
    a = predictions["actual"].to_numpy(dtype="float64")
    p = predictions["prediction"].to_numpy(dtype="float64")
    ok = np.isfinite(a) & np.isfinite(p)
    lam = (
        predictions["noise_lambda"].to_numpy(dtype="float64")
        if "noise_lambda" in predictions
        else np.full(len(a), np.nan)
    )
    lam = np.where(ok, lam, np.nan)
    work = predictions[by].copy()
    work["_abs"] = np.where(ok, np.abs(a - p), np.nan)
    work["_sq"] = np.where(ok, (a - p) ** 2, np.nan)
    work["_n"] = ok.astype("int64")
    work["_floor"] = poisson_expected_abs_error(lam)
    g = work.groupby(by, sort=True, dropna=False).agg(
        mae=("_abs", "mean"),
        mse=("_sq", "mean"),
        n=("_n", "sum"),
        noise_floor_mae=("_floor", "mean"),
    )
    g["rmse"] = np.sqrt(g["mse"])
    out = g.reset_index()
    out["n"] = out["n"].astype("int64")
    return out[by + METRIC_COLUMNS]


def day_block_bootstrap_mae(
    days, abs_errors: dict[str, np.ndarray], block: int = 7, n_boot: int = 2000, seed: int = 0
) -> dict[str, np.ndarray]:
    """Bootstrap replicates of each model's MAE, resampling target DAYS in circular blocks.

    ``days``: the target day of each row; ``abs_errors``: per model, the absolute error of the
    same rows (aligned, finite). Days are resampled in blocks of ``block`` consecutive days
    (errors of one day are correlated across series, and of neighbouring days through the
    weather, events and recording runs); every model sees the SAME resamples, so the
    difference of two models' replicates is a paired interval. Returns ``{model: (n_boot,)}``.
    """
    day_codes, day_index = np.unique(pd.to_datetime(np.asarray(days)), return_inverse=True)
    n_days = len(day_codes)
    if n_days == 0:
        return {m: np.full(n_boot, np.nan) for m in abs_errors}
    rng = np.random.default_rng(seed)
    n_blocks = -(-n_days // block)
    starts = rng.integers(0, n_days, size=(n_boot, n_blocks))
    picked = (starts[:, :, None] + np.arange(block)[None, None, :]) % n_days
    picked = picked.reshape(n_boot, -1)[:, :n_days]
    # weight of each day in each replicate = how often it was drawn
    weights = np.zeros((n_boot, n_days))
    np.add.at(weights, (np.repeat(np.arange(n_boot), n_days), picked.ravel()), 1.0)
    rows_per_day = np.bincount(day_index, minlength=n_days).astype("float64")
    denom = weights @ rows_per_day
    out = {}
    for model, err in abs_errors.items():
        per_day = np.bincount(day_index, weights=np.asarray(err, dtype="float64"), minlength=n_days)
        out[model] = (weights @ per_day) / denom
    return out


def mae_intervals(
    predictions: pd.DataFrame, by: list[str], level: float = 0.95, n_boot: int = 2000
) -> pd.DataFrame:
    """The ``level`` day-block bootstrap interval (:func:`day_block_bootstrap_mae`) of the MAE
    of each group of ``predictions`` (``by`` columns; ``ds`` the target day, ``prediction``,
    ``actual``; the rows :func:`score` scores). Returns ``by + [mae_lo, mae_hi]``; a group
    with no scored row gets NaN."""
    a = predictions["actual"].to_numpy(dtype="float64")
    p = predictions["prediction"].to_numpy(dtype="float64")
    ok = np.isfinite(a) & np.isfinite(p)
    work = predictions.loc[:, [*by, "ds"]].copy()
    work["_abs"] = np.where(ok, np.abs(a - p), np.nan)
    rows = []
    for key, g in work.groupby(by, sort=True, dropna=False):
        g = g[g["_abs"].notna()]
        lo = hi = float("nan")
        if len(g):
            reps = day_block_bootstrap_mae(
                g["ds"].to_numpy(), {"m": g["_abs"].to_numpy()}, n_boot=n_boot
            )
            lo, hi = interval(reps["m"], level)
        rows.append((*(key if isinstance(key, tuple) else (key,)), lo, hi))
    return pd.DataFrame(rows, columns=[*by, "mae_lo", "mae_hi"])


def common_errors(
    frame: pd.DataFrame, models, index: Sequence[str] = ("series_id", "ds", "cutoff")
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Absolute and squared errors, one column per model of ``models``, over the rows (``index``)
    every one of them predicted: the common rows models are compared on."""
    sub = frame[frame["model"].isin(list(models))].copy()
    sub["abs_err"] = (sub["prediction"] - sub["actual"]).abs()
    sub["sq_err"] = (sub["prediction"] - sub["actual"]) ** 2
    index = list(index)
    wide = sub.pivot_table(index=index, columns="model", values="abs_err", aggfunc="first")
    sq = sub.pivot_table(index=index, columns="model", values="sq_err", aggfunc="first")
    keep = wide.notna().all(axis=1)
    return wide[keep], sq[keep]


def best_on_validation(
    validation: pd.DataFrame, candidates, by: list[str] | None = None
) -> pd.DataFrame:
    """Per group of ``by`` (default ``horizon``), the candidate with the lowest MAE on the
    ``validation`` rows every present candidate predicted (ties: name). Pass only rows before
    the test window: what is chosen here is then the reference of the test rows too. Returns
    ``by + [baseline_model]`` (no row for a group without a candidate)."""
    by = list(by or ["horizon"])
    sub = validation[validation["model"].isin(list(candidates))]
    sub = sub[
        np.isfinite(sub["actual"].to_numpy("f8")) & np.isfinite(sub["prediction"].to_numpy("f8"))
    ]
    rows = []
    key = [c for c in ("series_id", "ds", "cutoff", "origin") if c in sub.columns]
    for group, g in sub.groupby(by, sort=True):
        wide, _sq = common_errors(g, sorted(g["model"].unique()), index=key)
        if wide.empty:
            continue
        maes = wide.mean()
        best = min(maes.index, key=lambda m: (maes[m], m))
        rows.append((*(group if isinstance(group, tuple) else (group,)), str(best)))
    out = pd.DataFrame(rows, columns=[*by, "baseline_model"])
    return out.astype({c: validation[c].dtype for c in by})  # typed even when empty


DIFF_COLUMNS = ["baseline_model", "diff_baseline", "diff_lo", "diff_hi"]


def baseline_differences(
    predictions: pd.DataFrame,
    by: list[str],
    baselines: pd.DataFrame,
    level: float = 0.95,
    n_boot: int = 2000,
) -> pd.DataFrame:
    """Each group's MAE minus its baseline's MAE on the rows both scored, with the ``level``
    PAIRED day-block bootstrap interval of that difference (both error series resampled on the
    same days by :func:`day_block_bootstrap_mae`).

    ``by`` holds ``model``; ``baselines`` maps the other columns it shares with ``by`` (e.g.
    ``horizon``) to ``baseline_model`` (:func:`best_on_validation`). Rows pair on ``by`` minus
    ``model`` plus ``series_id``, ``ds`` and ``cutoff``. Returns ``by +`` :data:`DIFF_COLUMNS`,
    one row per group that has a baseline and a common row (the baseline's own row: 0 [0, 0])."""
    a = predictions["actual"].to_numpy(dtype="float64")
    p = predictions["prediction"].to_numpy(dtype="float64")
    ok = np.isfinite(a) & np.isfinite(p)
    others = [c for c in by if c != "model"]
    pair = [
        *others,
        *(c for c in ("series_id", "ds", "cutoff") if c in predictions and c not in by),
    ]
    work = predictions.loc[ok, list(dict.fromkeys([*by, *pair]))].copy()
    work["_abs"] = np.abs(a[ok] - p[ok])
    ref_on = [c for c in baselines.columns if c != "baseline_model"]
    work = work.merge(baselines, on=ref_on, how="inner")
    base = work.loc[work["model"] == work["baseline_model"], [*pair, "_abs"]]
    work = work.merge(base.rename(columns={"_abs": "_base"}), on=pair, how="inner")
    rows = []
    for key, g in work.groupby(by, sort=True, dropna=False):
        reps = day_block_bootstrap_mae(
            g["ds"].to_numpy(),
            {"m": g["_abs"].to_numpy(), "b": g["_base"].to_numpy()},
            n_boot=n_boot,
        )
        lo, hi = interval(reps["m"] - reps["b"], level)
        diff = float(g["_abs"].mean() - g["_base"].mean())
        keys = key if isinstance(key, tuple) else (key,)
        rows.append((*keys, g["baseline_model"].iloc[0], diff, lo, hi))
    out = pd.DataFrame(rows, columns=[*by, *DIFF_COLUMNS])
    types = {c: predictions[c].dtype for c in by} | dict.fromkeys(DIFF_COLUMNS[1:], "float64")
    return out.astype(types)  # typed even when empty


def interval(replicates: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates."""
    tail = (1 - level) / 2 * 100
    lo, hi = np.nanpercentile(replicates, [tail, 100 - tail])
    return float(lo), float(hi)


def outside_band_test(outside: int, checked: int, level: float, alpha: float) -> dict:
    """``outside`` of ``checked`` observations fell outside their ``level`` interval: the count
    expected by chance when the intervals are calibrated (``checked × (1 − level)``), the
    largest count chance gives with probability ``1 − alpha`` and the one-sided binomial
    p-value P(X ≥ outside); ``above_chance`` when that p-value is below ``alpha``.

    The binomial treats the observations as independent; series-days of one forecast
    hierarchy are not quite (a city-wide day shows at every level), so the test is approximate."""
    p = 1.0 - level
    p_value = float(stats.binom.sf(outside - 1, checked, p)) if checked else 1.0
    return {
        "outside": int(outside),
        "checked": int(checked),
        "expected": round(checked * p, 2),
        "chance_upper": int(stats.binom.ppf(1.0 - alpha, checked, p)) if checked else 0,
        "p_value": p_value,
        "above_chance": checked > 0 and p_value < alpha,
    }
