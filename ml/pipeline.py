"""One source end to end: rolling-origin backtest of the zoo, calibrated intervals, champions,
champion forecasts with intervals, coherent hierarchy, explanations, anomalies, run records.

Plain Python (no Dagster): ``orchestration/defs/incidents/ml.py`` reads the marts, calls
:func:`run_source` per source and appends the returned frames to the ``ml.*`` tables.
See docs/forecasting.md for the protocol and every table's columns.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator

from ml.backtest import BacktestPlan, rolling_backtest
from ml.champion import (
    ENSEMBLE,
    add_ensemble,
    champion_rows,
    ensemble_members_by_horizon,
    select_champions,
)
from ml.features import FEATURE_COLUMNS, from_mart, split_series_id
from ml.forecast import forecast_direct
from ml.hierarchy import aggregate
from ml.history import check as check_history
from ml.intervals import (
    LEVELS,
    add_intervals,
    calibrate,
    coverage,
    coverage_by_bin,
    interval_columns,
    lookup,
)
from ml.metrics import DIFF_COLUMNS, baseline_differences, best_on_validation, mae_intervals, score
from ml.models import describe
from ml.runs import model_run_record, train_window
from ml.zoo import (
    MEDIAN_BASELINES,
    ensemble_members,
    make_model,
    model_factory,
    profile_models,
)

INTERVALS = interval_columns()
TOP_DRIVERS = 5


#: anomalies are the latest window's out-of-sample one-step rows outside this band (step 6)
ANOMALY_LEVEL = 0.95
#: days of that latest window
ANOMALY_WINDOW_DAYS = 7


@dataclass
class RunConfig:
    """What one run does. ``profile`` picks the model list (:data:`ml.zoo.PROFILES`)."""

    run_id: str
    test_cutoff: date
    horizon: int = 28
    profile: str = "lean"
    models: list[str] | None = None
    plan: BacktestPlan = field(default_factory=BacktestPlan)
    artifacts_dir: Path | None = None
    anomaly_window_days: int = ANOMALY_WINDOW_DAYS
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))

    def model_names(self) -> list[str]:
        return list(self.models) if self.models else profile_models(self.profile)

    def effective_plan(self) -> BacktestPlan:
        """The plan's horizons plus the operational horizon when it is longer."""
        return self.plan.covering(self.horizon)


def _keys(frame: pd.DataFrame) -> pd.DataFrame:
    parts = split_series_id(frame["series_id"])
    out = frame.copy()
    for col in ("source", "area", "category"):
        out[col] = parts[col].to_numpy()
    return out


def _d(values) -> np.ndarray:
    """Python dates (DuckDB DATE) of timestamps; converts each distinct day once."""
    codes, uniques = pd.factorize(pd.to_datetime(pd.Series(values)).to_numpy())
    days = np.array([pd.Timestamp(u).date() for u in uniques] + [None], dtype=object)
    return days[codes]  # code -1 (NaT) → None


def _score_with_coverage(
    preds: pd.DataFrame, by: list[str], baselines: pd.DataFrame
) -> pd.DataFrame:
    """Scores of ``by`` groups: :func:`ml.metrics.score`, the MAE's bootstrap interval, the
    difference to ``baselines`` (chosen on validation) with its paired interval, coverage."""
    m = score(preds, by=by).merge(mae_intervals(preds, by), on=by, how="left")
    m = m.merge(baseline_differences(preds, by, baselines), on=by, how="left")
    m["baseline_model"] = m["baseline_model"].astype("string")
    cov = coverage(preds, by=by)
    if not cov.empty:
        wide = cov.pivot_table(index=by, columns="nominal", values="coverage").reset_index()
        wide = wide.rename(columns={lv: f"coverage_{round(lv * 100)}" for lv in LEVELS})
        m = m.merge(wide, on=by, how="left")
    for lv in LEVELS:
        col = f"coverage_{round(lv * 100)}"
        if col not in m:
            m[col] = np.nan
    return m


def _tail_probability(actual, mean, phi, above) -> np.ndarray:
    mu = np.maximum(np.asarray(mean, "f8"), 0.05)
    y = np.asarray(actual, "f8")
    if phi <= 1e-9:
        dist = stats.poisson(mu)
    else:
        n = 1 / phi
        dist = stats.nbinom(n, n / (n + mu))
    return np.where(above, dist.sf(y - 1), dist.cdf(y))


def run_source(
    source: str,
    mart: pd.DataFrame,
    holidays: Iterable[date],
    config: RunConfig,
    log: Callable[[str], None] = print,
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Everything for one source. Returns the ``ml.*`` frames (table name → rows) and a
    summary for the run metadata. Raises :class:`ml.history.InsufficientHistory` (one line)
    before fitting anything when the data does not hold the backtest plan
    (:func:`ml.history.assess` tells in advance)."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    frame = from_mart(mart) if "date" in mart.columns else mart.copy()
    plan = config.effective_plan()
    known = frame.loc[frame["y"].notna(), "ds"]
    check_history(
        source,
        known.min().date() if len(known) else None,
        known.max().date() if len(known) else None,
        plan,
        pd.Timestamp(config.test_cutoff).date(),
    )
    last_day = frame["ds"].max().date()
    names = config.model_names()
    members = ensemble_members(names)
    cutoff = pd.Timestamp(config.test_cutoff)
    log(
        f"{source}: {frame['series_id'].nunique()} series × {frame['ds'].nunique()} days; "
        f"test from {cutoff.date()}, cv cutoffs {[str(c.date()) for c in plan.cv_cutoffs(cutoff)]}"
        f", horizons {list(plan.horizons)}, models {names}" + (f" + {ENSEMBLE}" if members else "")
    )

    # 1. rolling-origin backtest (refit per cutoff and horizon) ---------------------------------
    preds, fitted = rolling_backtest(
        frame, model_factory(names, config.profile), cutoff, plan, log=log
    )
    ens = ensemble_members_by_horizon(preds, members) if members else {}
    if ens:
        preds = add_ensemble(preds, ens)
        log(f"{source}: ensemble members (chosen on cv) {ens}")
    timings["backtest"] = time.perf_counter() - t0

    # 2. intervals: calibrated on cv, measured on test --------------------------------------
    cv = preds[preds["split"] == "cv"]
    calib = calibrate(cv)
    preds = add_intervals(preds, calib)

    # 3. champions from cv only --------------------------------------------------------------
    champions = select_champions(cv)
    champ = champion_rows(preds, champions)
    preds["champion_model"] = None
    preds = pd.concat([preds, champ], ignore_index=True)

    # 4. hierarchy of the champion's backtest rows: calibrated per level on cv -----------------
    hb = aggregate(
        champ.rename(columns={"prediction_mean": "mean"}),
        keys=["ds", "origin", "split", "cutoff", "horizon"],
        sum_cols=["mean", "actual", "noise_lambda"],
    ).rename(columns={"mean": "prediction_mean"})
    hb["prediction"] = hb["prediction_mean"]
    hb["model"] = "champion"
    level_calib = calibrate(hb[hb["split"] == "cv"], by=("level", "horizon"))
    hb = add_intervals(hb, level_calib, by=("level", "horizon"))
    # bottom rows keep the per-model intervals (identical rows to the champion's own)
    hb = hb[hb["level"] != "area_category"]
    timings["calibration_and_selection"] = time.perf_counter() - t0 - timings["backtest"]

    # 5. tables of the backtest ---------------------------------------------------------------
    run_id = config.run_id
    bp = _keys(preds)
    backtest_predictions = pd.DataFrame(
        {
            "run_id": run_id,
            "source": bp["source"],
            "series_id": bp["series_id"],
            "area": bp["area"],
            "category": bp["category"],
            "split": bp["split"],
            "cutoff": _d(bp["cutoff"]),
            "date": _d(bp["ds"]),
            "horizon": bp["horizon"].astype("int64"),
            "model": bp["model"],
            "prediction": bp["prediction"],
            "actual": bp["actual"],
            "origin": _d(bp["origin"]),
            "prediction_mean": bp["prediction_mean"],
            **{c: bp[c] for c in INTERVALS},
            "champion_model": bp["champion_model"],
        }
    )
    # the reference of every row, test rows included: the best median baseline on validation
    baselines = best_on_validation(cv, MEDIAN_BASELINES)
    metrics = _score_with_coverage(preds, ["split", "cutoff", "model", "horizon"], baselines)
    backtest_metrics = metrics.assign(run_id=run_id, source=source, cutoff=_d(metrics["cutoff"]))
    backtest_metrics = backtest_metrics[
        [
            "run_id",
            "source",
            "split",
            "cutoff",
            "model",
            "horizon",
            "mae",
            "mae_lo",
            "mae_hi",
            *DIFF_COLUMNS,
            "rmse",
            "n",
            "noise_floor_mae",
            "coverage_80",
            "coverage_95",
        ]
    ]
    sm = score(preds, by=["series_id", "split", "cutoff", "model", "horizon"])
    series_metrics = sm.assign(run_id=run_id, source=source, cutoff=_d(sm["cutoff"]))[
        [
            "run_id",
            "source",
            "series_id",
            "split",
            "cutoff",
            "model",
            "horizon",
            "mae",
            "rmse",
            "n",
            "noise_floor_mae",
        ]
    ]
    board = _score_with_coverage(preds, ["split", "model", "horizon"], baselines)
    ref = board[board["model"] == "mean_28"].set_index(["split", "horizon"])["mae"]
    board["mae_vs_mean_28"] = board["mae"] / [
        ref.get((s, h), np.nan) for s, h in zip(board["split"], board["horizon"], strict=True)
    ]
    board["rank"] = board.groupby(["split", "horizon"])["mae"].rank(method="min").astype(int)
    src_champ = champions.drop_duplicates("horizon").set_index("horizon")["source_champion"]
    n_champ = champions.groupby(["horizon", "model"]).size()
    board["is_source_champion"] = [
        src_champ.get(h) == m for m, h in zip(board["model"], board["horizon"], strict=True)
    ]
    board["n_series_champion"] = [
        int(n_champ.get((h, m), 0)) for m, h in zip(board["model"], board["horizon"], strict=True)
    ]
    leaderboard = board.assign(run_id=run_id, source=source)[
        [
            "run_id",
            "source",
            "split",
            "model",
            "horizon",
            "rank",
            "mae",
            "mae_lo",
            "mae_hi",
            *DIFF_COLUMNS,
            "rmse",
            "n",
            "noise_floor_mae",
            "mae_vs_mean_28",
            "coverage_80",
            "coverage_95",
            "is_source_champion",
            "n_series_champion",
        ]
    ].sort_values(["split", "horizon", "rank"])

    cov = _coverage_table(preds, hb, calib, level_calib)
    interval_coverage = cov.assign(run_id=run_id, source=source)[
        [
            "run_id",
            "source",
            "split",
            "level",
            "model",
            "horizon",
            "bin",
            "expected_lo",
            "expected_hi",
            "nominal",
            "coverage",
            "n",
            "mean_width",
            "below",
            "above",
            "tau",
            "phi",
        ]
    ]
    champions_table = champions.assign(run_id=run_id)[["run_id", *champions.columns]]

    # 6. anomalies: the latest out-of-sample one-step champion rows outside the ANOMALY_LEVEL
    # (95 %) band ----
    test1 = pd.concat(
        [
            _keys(champ[(champ["split"] == "test") & (champ["horizon"] == 1)]).assign(
                level="area_category"
            ),
            hb[(hb["split"] == "test") & (hb["horizon"] == 1)].assign(champion_model="champion"),
        ],
        ignore_index=True,
    )
    lo_col, hi_col = interval_columns([ANOMALY_LEVEL])
    out_lo = test1["actual"] < test1[lo_col]
    out_hi = test1["actual"] > test1[hi_col]
    anomalous = test1[(out_lo | out_hi).to_numpy()].copy()
    anomalous["direction"] = np.where(anomalous["actual"] > anomalous[hi_col], "above", "below")
    bottom = (anomalous["level"] == "area_category").to_numpy()
    phis = np.zeros(len(anomalous))
    if bottom.any():
        rows = anomalous[bottom].rename(columns={"champion_model": "cal_model"})
        rows = rows.drop(columns="model").rename(columns={"cal_model": "model"})
        phis[bottom] = lookup(rows, calib)["phi"].fillna(0.0).to_numpy()
    if (~bottom).any():
        rows = anomalous[~bottom]
        phis[~bottom] = (
            lookup(rows, level_calib, by=("level", "horizon"))["phi"].fillna(0.0).to_numpy()
        )
    anomalous["tail_probability"] = [
        float(_tail_probability([a], [m], p, [d == "above"])[0])
        for a, m, p, d in zip(
            anomalous["actual"],
            anomalous["prediction_mean"],
            phis,
            anomalous["direction"],
            strict=True,
        )
    ]
    window_start = pd.Timestamp(last_day) - pd.Timedelta(days=config.anomaly_window_days - 1)
    anomalies = pd.DataFrame(
        {
            "run_id": run_id,
            "source": source,
            "level": anomalous["level"],
            "series_id": anomalous["series_id"],
            "area": anomalous["area"],
            "category": anomalous["category"],
            "date": _d(anomalous["ds"]),
            "as_of_date": _d(anomalous["origin"]),
            "horizon": anomalous["horizon"].astype("int64"),
            "model": anomalous["champion_model"],
            "actual": anomalous["actual"],
            "forecast": anomalous["prediction"],
            "forecast_mean": anomalous["prediction_mean"],
            "forecast_lo_95": anomalous["forecast_lo_95"],
            "forecast_hi_95": anomalous["forecast_hi_95"],
            "direction": anomalous["direction"],
            "tail_probability": anomalous["tail_probability"],
            "in_latest_window": (anomalous["ds"] >= window_start).to_numpy(),
        }
    )
    latest_rows = int((test1["ds"] >= window_start).sum())
    t1 = time.perf_counter()

    # 7. operational forecasts from the champions, all history ----------------------------------
    fc, op_models, op_rows = forecast_direct(
        frame,
        champions,
        lambda name: make_model(name, config.profile),
        horizon=config.horizon,
        trained_horizons=plan.horizons,
        holidays=holidays,
        ensemble=(ENSEMBLE, ens) if ens else None,
        train_days=plan.train_days,
    )
    fc = _forecast_intervals(fc, calib)
    as_of = last_day
    fk = _keys(fc)
    forecasts = pd.DataFrame(
        {
            "run_id": run_id,
            "as_of_date": as_of,
            "source": fk["source"],
            "area": fk["area"],
            "category": fk["category"],
            "series_id": fk["series_id"],
            "date": _d(fk["ds"]),
            "horizon": fk["horizon"].astype("int64"),
            "model": fk["model"],
            "forecast": fk["forecast"],
            "forecast_mean": fk["forecast_mean"],
            **{c: fk[c] for c in INTERVALS},
            "direct_horizon": fk["bucket"].astype("int64"),
            "created_at": config.started_at,
        }
    )
    hf = aggregate(
        fc[["series_id", "ds", "horizon", "bucket", "forecast_mean"]],
        keys=["ds", "horizon", "bucket"],
        sum_cols=["forecast_mean"],
    )
    hf = hf.merge(fc[["series_id", "ds", *INTERVALS]], on=["series_id", "ds"], how="left")
    agg_mask = (hf["level"] != "area_category").to_numpy()
    if agg_mask.any():
        agg = hf[agg_mask].drop(columns=INTERVALS)
        agg = add_intervals(
            agg.rename(columns={"horizon": "step", "bucket": "horizon"}),
            level_calib,
            by=("level", "horizon"),
            mean_col="forecast_mean",
        ).rename(columns={"horizon": "bucket", "step": "horizon"})
        hf = pd.concat([hf[~agg_mask], agg[hf.columns]], ignore_index=True)
    forecasts_hierarchy = pd.DataFrame(
        {
            "run_id": run_id,
            "as_of_date": as_of,
            "created_at": config.started_at,
            "level": hf["level"],
            "source": hf["source"],
            "area": hf["area"],
            "category": hf["category"],
            "series_id": hf["series_id"],
            "date": _d(hf["ds"]),
            "horizon": hf["horizon"].astype("int64"),
            "forecast": hf["forecast_mean"],
            **{c: hf[c] for c in INTERVALS},
        }
    )

    # 8. explanations of the forecast rows (models with explain(); ensemble: its members) ------
    explanations = _explanations(fc, op_models, op_rows, ens, run_id, as_of, source)
    importance = _importance(fitted, run_id, source)
    timings["operational"] = time.perf_counter() - t1

    # 9. run records (+ versioned artifacts) -----------------------------------------------
    model_runs = _model_runs(
        config, source, frame, cutoff, fitted, op_models, leaderboard, champions, ens
    )
    timings["total"] = time.perf_counter() - t0
    summary = _summary(
        source,
        cutoff,
        last_day,
        plan,
        names,
        ens,
        leaderboard,
        champions,
        anomalies,
        latest_rows,
        timings,
        config,
    )
    frames = {
        "forecasts": forecasts,
        "forecasts_hierarchy": forecasts_hierarchy,
        "backtest_predictions": backtest_predictions,
        "backtest_metrics": backtest_metrics,
        "backtest_series_metrics": series_metrics,
        "leaderboard": leaderboard,
        "interval_coverage": interval_coverage,
        "champions": champions_table,
        "anomalies": anomalies,
        "forecast_explanations": explanations,
        "feature_importance": importance,
        "model_runs": model_runs,
    }
    return frames, summary


def _coverage_table(preds, hb, calib, level_calib) -> pd.DataFrame:
    """Coverage per split, level, model and horizon: pooled (``bin = 'all'``) and per quartile
    of expected count (bins from the validation rows), with the τ and φ of the calibration bin
    when it is the same bin (NaN for the champion, whose rows come from several models, and for
    pooled rows of a group calibrated in several bins)."""
    by = ["split", "model", "horizon"]
    bottom = pd.concat(
        [coverage(preds, by=by).assign(bin="all"), coverage_by_bin(preds, by=by)],
        ignore_index=True,
    ).assign(level="area_category")
    lby = ["split", "level", "horizon"]
    levels = pd.concat(
        [coverage(hb, by=lby).assign(bin="all"), coverage_by_bin(hb, by=lby)], ignore_index=True
    ).assign(model="champion")
    cov = pd.concat([bottom, levels], ignore_index=True)
    cal_long = pd.concat(
        [
            calib.assign(level="area_category"),
            level_calib[level_calib["level"] != "area_category"].assign(model="champion"),
        ],
        ignore_index=True,
    )
    n_bins = cal_long.groupby(["level", "model", "horizon"])["bin"].transform("size")
    # a group calibrated as one bin has the same τ/φ in every report bin and pooled
    single = cal_long[n_bins == 1]
    cal_long = pd.concat(
        [cal_long[n_bins > 1], *(single.assign(bin=b) for b in ("all", "q1", "q2", "q3", "q4"))],
        ignore_index=True,
    )
    long = []
    for lv in LEVELS:
        p = round(lv * 100)
        part = cal_long[["level", "model", "horizon", "bin", "phi", f"tau_{p}"]]
        long.append(part.rename(columns={f"tau_{p}": "tau"}).assign(nominal=lv))
    taus = pd.concat(long, ignore_index=True).drop_duplicates(
        ["level", "model", "horizon", "bin", "nominal"]
    )
    out = cov.merge(taus, on=["level", "model", "horizon", "bin", "nominal"], how="left")
    for col in ("expected_lo", "expected_hi"):
        if col not in out:
            out[col] = np.nan
    return out


def _forecast_intervals(fc: pd.DataFrame, calib: pd.DataFrame) -> pd.DataFrame:
    """Intervals of operational rows: the calibration of (model, direct horizon)."""
    tmp = fc.rename(columns={"horizon": "step", "bucket": "horizon"})
    tmp = add_intervals(tmp, calib, by=("model", "horizon"), mean_col="forecast_mean")
    return tmp.rename(columns={"horizon": "bucket", "step": "horizon"})


def _explanations(fc, op_models, op_rows, members, run_id, as_of, source) -> pd.DataFrame:
    out = []
    for (name, b), model in op_models.items():
        if not hasattr(model, "explain"):
            continue
        in_ensemble = name in members.get(b, ())
        made = fc[
            (fc["bucket"] == b)
            & ((fc["model"] == name) | ((fc["model"] == ENSEMBLE) & in_ensemble))
        ]
        if made.empty:
            continue
        rows = (
            op_rows[b]
            .set_index(["series_id", "ds"])
            .loc[pd.MultiIndex.from_frame(made[["series_id", "ds"]])]
            .reset_index()
        )
        contrib, base = model.explain(rows)
        feats = list(contrib.columns)
        values = contrib.to_numpy()
        order = np.argsort(-np.abs(values), axis=1)[:, :TOP_DRIVERS]
        n = len(rows)
        ridx = np.repeat(np.arange(n), order.shape[1])
        fidx = order.ravel()
        xvals = rows[feats].to_numpy(dtype="float64")
        out.append(
            pd.DataFrame(
                {
                    "run_id": run_id,
                    "as_of_date": as_of,
                    "source": source,
                    "series_id": rows["series_id"].to_numpy()[ridx],
                    "date": _d(rows["ds"].to_numpy()[ridx]),
                    "horizon": made["horizon"].to_numpy()[ridx].astype("int64"),
                    "model": made["model"].to_numpy()[ridx],
                    "explained_by": name,
                    "rank": np.tile(np.arange(1, order.shape[1] + 1), n),
                    "feature": np.asarray(feats, dtype=object)[fidx],
                    "feature_value": xvals[ridx, fidx],
                    "contribution": values[ridx, fidx],
                    "base_value": np.asarray(base)[ridx],
                    "scale": "log_rate",
                }
            )
        )
    if not out:
        return pd.DataFrame(
            columns=[
                "run_id",
                "as_of_date",
                "source",
                "series_id",
                "date",
                "horizon",
                "model",
                "explained_by",
                "rank",
                "feature",
                "feature_value",
                "contribution",
                "base_value",
                "scale",
            ]
        )
    return pd.concat(out, ignore_index=True)


def _importance(fitted, run_id, source) -> pd.DataFrame:
    rows = []
    for (name, h), model in fitted.items():
        if not hasattr(model, "importance"):
            continue
        imp = model.importance()
        ranked = sorted(imp.items(), key=lambda kv: -kv[1])
        for rank, (feat, value) in enumerate(ranked, start=1):
            rows.append(
                {
                    "run_id": run_id,
                    "source": source,
                    "model": name,
                    "horizon": int(h),
                    "feature": feat,
                    "importance": float(value),
                    "importance_type": model.importance_type,
                    "rank": rank,
                    "fitted_on": "test_cutoff",
                }
            )
    return pd.DataFrame(
        rows,
        columns=[
            "run_id",
            "source",
            "model",
            "horizon",
            "feature",
            "importance",
            "importance_type",
            "rank",
            "fitted_on",
        ],
    )


class Ensemble(BaseEstimator):
    """Artifact of the ensemble: its members (their own artifacts sit beside it). A
    scikit-learn estimator for its parameters only: the average itself is computed from the
    members' backtest and forecast rows (:func:`ml.champion.add_ensemble`)."""

    name = ENSEMBLE
    features = FEATURE_COLUMNS

    def __init__(self, members: Sequence[str] = (), combine: str = "mean of expected counts"):
        self.members = members
        self.combine = combine

    def save(self, path):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(describe(self), indent=2))
        return path


def _model_runs(config, source, frame, cutoff, fitted, op_models, board, champions, members):
    # the days the fits really used (the plan's train_days window, not the first day read)
    train_days = config.effective_plan().train_days
    start, end = train_window(frame, cutoff, train_days)
    start_all, end_all = train_window(frame, train_days=train_days)
    test = board[board["split"] == "test"].set_index(["model", "horizon"])
    cvb = board[board["split"] == "cv"].set_index(["model", "horizon"])
    recs = []
    items = [(k, m, "backtest_test") for k, m in fitted.items()]
    items += [((ENSEMBLE, h), Ensemble(list(m)), "backtest_test") for h, m in members.items()]
    items += [(k, m, "operational") for k, m in op_models.items()]
    op_ens = {int(h) for h in champions.loc[champions["model"] == ENSEMBLE, "horizon"]}
    items += [((ENSEMBLE, h), Ensemble(list(members[h])), "operational") for h in sorted(op_ens)]
    for (name, h), model, role in items:
        metrics: dict[str, Any] = {}
        if (name, h) in test.index:
            r = test.loc[(name, h)]
            metrics.update(
                {
                    k: r[k]
                    for k in ("mae", "rmse", "n", "noise_floor_mae", "coverage_80", "coverage_95")
                }
            )
        if (name, h) in cvb.index:
            metrics["cv_mae"] = cvb.loc[(name, h), "mae"]
        metrics["cv_cutoffs"] = [str(c.date()) for c in config.effective_plan().cv_cutoffs(cutoff)]
        suffix = "_operational" if role == "operational" else ""
        rec = model_run_record(
            run_id=config.run_id,
            source=source,
            model=model,
            name=name,
            artifact_name=f"{name}_h{h}{suffix}",
            train_start=start if role != "operational" else start_all,
            train_end=end if role != "operational" else end_all,
            cutoff=cutoff if role != "operational" else None,
            metrics=metrics,
            artifact_dir=config.artifacts_dir,
            started_at=config.started_at,
        )
        rec["horizon"] = int(h)
        rec["role"] = role
        recs.append(rec)
    return pd.DataFrame(recs)


def _summary(
    source,
    cutoff,
    last_day,
    plan,
    names,
    members,
    board,
    champions,
    anomalies,
    latest_rows,
    timings,
    config,
) -> dict[str, Any]:
    test = board[board["split"] == "test"]
    champ = test[test["model"] == "champion"].set_index("horizon")
    base = test[test["model"] == "mean_28"].set_index("horizon")
    latest = anomalies[anomalies["in_latest_window"]]
    return {
        "source": source,
        "test_cutoff": str(cutoff.date()),
        "last_day": str(last_day),
        "cv_cutoffs": [str(c.date()) for c in plan.cv_cutoffs(cutoff)],
        "horizons": list(plan.horizons),
        "profile": config.profile,
        "models": names + ([ENSEMBLE] if members else []),
        "ensemble_members": {int(h): m for h, m in members.items()},
        "features": list(FEATURE_COLUMNS),
        "champion_mae": {int(h): round(float(r["mae"]), 4) for h, r in champ.iterrows()},
        "champion_coverage_80": {
            int(h): round(float(r["coverage_80"]), 4) for h, r in champ.iterrows()
        },
        "champion_coverage_95": {
            int(h): round(float(r["coverage_95"]), 4) for h, r in champ.iterrows()
        },
        "mean_28_mae": {int(h): round(float(r["mae"]), 4) for h, r in base.iterrows()},
        "noise_floor_mae": {
            int(h): round(float(r["noise_floor_mae"]), 4) for h, r in champ.iterrows()
        },
        "champions": champions.groupby(["horizon", "model"])
        .size()
        .rename("n")
        .reset_index()
        .to_dict("records"),
        "anomalies_latest_window": int(len(latest)),
        "anomaly_window_rows": latest_rows,
        "anomaly_window_days": config.anomaly_window_days,
        "seconds": {k: round(v, 1) for k, v in timings.items()},
    }
