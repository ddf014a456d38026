"""Scores of one incident benchmark set, honestly compared: every model of the run, the
median baselines, the peers (bench/peers.py), with day-block bootstrap intervals on each MAE and
on its difference to the best baseline and to the best peer, all on the same test rows.

"Best" is always decided on data before the test window: the best baseline on crimecast's
validation folds (split ``cv``), the best peer on a validation window of its own just before the
test cutoff. Nothing here is chosen on the test days.

Two model-based REFERENCES (not floors: a model can beat them) sit beside the models: the
Poisson one (``noise_floor_mae`` of the run: E|Y − median| if Y were Poisson(trailing 28-day
mean)) and ``ref_nb_28``, the realised MAE of median(NB(trailing 28-day mean, φ)) with φ
estimated per horizon on the validation rows. Every model is scored on all its test rows, on
the target days every horizon predicts (``target_days = 'common'``) and on consecutive
28-day windows of target days (``window`` 1, 2, …) when the test span holds more than one.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from bench import peers
from ml.intervals import estimate_dispersion, quantiles
from ml.metrics import best_on_validation, day_block_bootstrap_mae, interval, poisson_median
from ml.zoo import MEDIAN_BASELINES

#: the baselines whose point is a mean: reported, but not the reference of a median model
#: (:data:`ml.zoo.MEDIAN_BASELINES` are)
MEAN_BASELINES = ("mean_7", "mean_28")
KEY = ["series_id", "ds", "horizon"]
#: the negative-binomial reference (module docstring)
NB_REFERENCE = "ref_nb_28"
#: length of the test sub-windows (days of target dates)
WINDOW_DAYS = 28


def _predictions(con: duckdb.DuckDBPyConnection, source: str) -> pd.DataFrame:
    """The latest run's backtest predictions, with the median baselines derived from the mean
    baselines' window means (median of Poisson(window mean): the same kind of point as every
    count model's) when the run did not have them (the zoo has had them since issue 14)."""
    preds = con.execute(
        "select series_id, date::timestamp as ds, horizon, model, split, cutoff, prediction, "
        "prediction_mean, actual from ml.backtest_predictions where source = ? and run_id = "
        "(select max(run_id) from ml.backtest_predictions where source = ?)",
        [source, source],
    ).df()
    derived = []
    for mean_model in MEAN_BASELINES:
        median_model = mean_model.replace("mean_", "median_")
        if (preds["model"] == median_model).any():
            continue
        part = preds.loc[preds["model"] == mean_model].copy()
        part["model"] = median_model
        part["prediction"] = poisson_median(part["prediction_mean"].to_numpy())
        derived.append(part)
    return pd.concat([preds, *derived], ignore_index=True)


def _best_on(frame: pd.DataFrame, candidates, horizon: int) -> str | None:
    """The candidate with the lowest MAE on ``frame``'s rows of ``horizon`` (the rule of the
    warehouse's ``baseline_model``: :func:`ml.metrics.best_on_validation`)."""
    best = best_on_validation(frame[frame["horizon"] == horizon], candidates)
    return str(best["baseline_model"].iloc[0]) if len(best) else None


def compare(warehouse: Path, source: str, with_peers: bool = True) -> tuple[list[dict], dict]:
    """Rows (one per model × horizon, test split) and facts about the comparison."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        preds = _predictions(con, source)
        y = con.execute(
            "select series_id as unique_id, date::timestamp as ds, incident_count::double as y "
            "from marts.daily_counts where source = ? order by 1, 2",
            [source],
        ).df()
    finally:
        con.close()
    test = preds.loc[preds["split"] == "test"]
    cv = preds.loc[preds["split"] == "cv"]
    test_cutoff = pd.Timestamp(test["cutoff"].min())
    end = test["ds"].max()
    horizons = sorted(test["horizon"].unique().tolist())
    info: dict = {"test_cutoff": str(test_cutoff.date()), "end": str(end.date())}

    frames = [test[[*KEY, "model", "prediction", "actual"]]]
    val_peers = pd.DataFrame(columns=[*KEY, "model", "prediction", "actual"])
    if with_peers and peers.available():
        # the peers' own validation window: targets in the max(h) + 27 days before the cutoff
        val_cutoff = test_cutoff - pd.Timedelta(days=28 + max(horizons) - 1)
        val, val_info = peers.peer_predictions(
            y, val_cutoff, test_cutoff - pd.Timedelta(days=1), horizons
        )
        got, peer_info = peers.peer_predictions(y, test_cutoff, end, horizons)
        actual = y.rename(columns={"unique_id": "series_id", "y": "actual"})
        val_peers = val.rename(columns={"unique_id": "series_id"}).merge(actual, on=KEY[:2])
        # the peers are scored on exactly crimecast's test rows
        rows = test.loc[test["model"] == "champion", [*KEY, "actual"]]
        got = got.rename(columns={"unique_id": "series_id"}).merge(rows, on=KEY, how="inner")
        frames.append(got[[*KEY, "model", "prediction", "actual"]])
        info["peer_seconds"] = {
            k: round(peer_info["seconds"][k] + val_info["seconds"][k], 1)
            for k in peer_info["seconds"]
        }
        info["lightgbm_config"] = {str(h): c for h, c in peer_info["lightgbm_config"].items()}
    scored = pd.concat(frames, ignore_index=True)
    peer_names = sorted(m for m in scored["model"].unique() if m.startswith(("sf_", "mlf_")))

    ref, info["nb_phi"] = nb_reference(preds)
    scored = pd.concat([scored, ref], ignore_index=True)

    out: list[dict] = []
    info["best_baseline"], info["best_peer"] = {}, {}
    common_first = test_cutoff + pd.Timedelta(days=max(horizons) - 1)
    n_windows = int((end - test_cutoff).days + 1) // WINDOW_DAYS
    info["common_target_days"] = [str(common_first.date()), str(end.date())]
    info["windows"] = [
        [
            str((test_cutoff + pd.Timedelta(days=WINDOW_DAYS * w)).date()),
            str((test_cutoff + pd.Timedelta(days=WINDOW_DAYS * (w + 1) - 1)).date()),
        ]
        for w in range(n_windows)
    ]
    for h in horizons:
        at_h = scored.loc[scored["horizon"] == h]
        base = _best_on(cv, MEDIAN_BASELINES, h)
        peer = _best_on(val_peers, peer_names, h) if peer_names else None
        info["best_baseline"][str(h)], info["best_peer"][str(h)] = base, peer
        refs = {"baseline": base, "peer": peer}
        out += score_rows(at_h, int(h), refs, peer_names)
        out += score_rows(
            at_h[at_h["ds"] >= common_first], int(h), refs, peer_names, target_days="common"
        )
        if n_windows > 1:
            for w in range(n_windows):
                first = test_cutoff + pd.Timedelta(days=WINDOW_DAYS * w)
                last = first + pd.Timedelta(days=WINDOW_DAYS)
                part = at_h[(at_h["ds"] >= first) & (at_h["ds"] < last)]
                out += score_rows(part, int(h), refs, peer_names, window=w + 1)
    return out, info


def nb_reference(preds: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
    """Test rows of :data:`NB_REFERENCE`: the median of NB(μ, φ) with μ the trailing 28-day
    mean (``mean_28``'s expected count) and φ its moment estimate on the VALIDATION rows of
    the same horizon (:func:`ml.intervals.estimate_dispersion`)."""
    rows, phis = [], {}
    m28 = preds.loc[preds["model"] == "mean_28"]
    for h, g in m28.groupby("horizon"):
        cv = g[g["split"] == "cv"]
        phi = estimate_dispersion(cv["prediction_mean"], cv["actual"])
        test = g[g["split"] == "test"].copy()
        test["prediction"] = quantiles(test["prediction_mean"].to_numpy(), phi, [0.5])[0]
        test["model"] = NB_REFERENCE
        rows.append(test[[*KEY, "model", "prediction", "actual"]])
        phis[str(int(h))] = round(phi, 4)
    cols = [*KEY, "model", "prediction", "actual"]
    return (pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=cols)), phis


def score_rows(
    at_h: pd.DataFrame,
    horizon: int,
    refs: dict[str, str | None],
    peer_names,
    target_days: str = "all",
    window: int | None = None,
) -> list[dict]:
    """One row per model of the test rows ``at_h`` (one horizon): MAE with its day-block
    bootstrap interval and the paired difference to each of ``refs`` (label → model), over
    the champion's rows (a model without all of them is left out: not comparable)."""
    champion_rows = at_h.loc[at_h["model"] == "champion", KEY]
    if champion_rows.empty:
        return []
    errors, counts = {}, {}
    for model, g in at_h.groupby("model"):
        g = champion_rows.merge(g, on=KEY, how="inner")
        if len(g) != len(champion_rows):
            continue
        g = g.sort_values(KEY)
        errors[model] = np.abs(g["actual"].to_numpy() - g["prediction"].to_numpy())
        counts[model] = len(g)
    days = champion_rows.sort_values(KEY)["ds"].to_numpy()
    reps = day_block_bootstrap_mae(days, errors)
    out = []
    for model, err in errors.items():
        lo, hi = interval(reps[model])
        row = {
            "model": model,
            "horizon": horizon,
            "mae": round(float(err.mean()), 4),
            "mae_lo": round(lo, 4),
            "mae_hi": round(hi, 4),
            "n": counts[model],
            "peer": model in peer_names,
        }
        if model == NB_REFERENCE:
            row["reference"] = True
        if target_days != "all":
            row["target_days"] = target_days
        if window is not None:
            row["window"] = window
        for label, ref in refs.items():
            if ref is None or ref not in reps or ref == model:
                continue
            dlo, dhi = interval(reps[model] - reps[ref])
            row[f"diff_{label}"] = round(float(err.mean() - errors[ref].mean()), 4)
            row[f"diff_{label}_lo"] = round(dlo, 4)
            row[f"diff_{label}_hi"] = round(dhi, 4)
        if "diff_baseline" in row:  # the generic names of the issue: vs the best baseline
            row["diff_lo"], row["diff_hi"] = row["diff_baseline_lo"], row["diff_baseline_hi"]
        out.append(row)
    return out
