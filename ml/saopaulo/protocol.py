"""São Paulo place-type model: the protocol (splits, baselines, XGBoost, feature ablation,
calibration, held-out scores) and the suppressed cell table; see :mod:`ml.saopaulo`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from ml.saopaulo.encoding import (
    Design,
    _choose_alpha,
    _codes,
    features_for,
    prior_of,
    smoothed_frequencies,
)
from ml.saopaulo.metrics import (
    TemperatureScaler,
    expected_calibration_error,
    log_loss,
    merge_small_bins,
    reliability_table,
    score,
    softmax,
)
from ml.saopaulo.schema import (
    CELL_KEYS,
    CLASSES,
    EPS,
    K,
    PlaceTypeConfig,
    PlaceTypeResult,
    encode_target,
)


class PlaceTypeXGB(ClassifierMixin, BaseEstimator):
    """The place-type booster as a scikit-learn estimator: an ``xgboost.XGBClassifier``
    (``estimator_``; wrapped, not subclassed, like :class:`ml.models.XGBCountModel`) with
    ``multi:softprob`` over the :data:`K` classes, hist trees and a fixed ``seed``.

    ``fit(X, y, eval_set=(X_val, y_val))`` stops early on that set (``early_stopping_rounds``);
    ``best_iteration_`` is the last tree kept and every prediction uses trees 0 …
    ``best_iteration_``. ``params`` are XGBoost's own names (:attr:`PlaceTypeConfig.xgb_params`).
    Labels are the class codes 0 … K−1; ``XGBClassifier`` wants every one of them in ``y``, so a
    class the rows lack is given one zero-weight row (its gradient is 0: the booster is the one
    ``xgb.train`` with ``num_class=K`` fits, margins identical on a test with 2 classes absent).
    """

    def __init__(
        self,
        n_estimators: int = 1500,
        early_stopping_rounds: int | None = None,
        params: dict | None = None,
        seed: int = 42,
        n_jobs: int = 1,
        n_classes: int = K,
    ) -> None:
        self.n_estimators = n_estimators
        self.early_stopping_rounds = early_stopping_rounds
        self.params = params
        self.seed = seed
        self.n_jobs = n_jobs
        self.n_classes = n_classes

    def _classifier(self, early_stopping: bool) -> xgb.XGBClassifier:
        return xgb.XGBClassifier(
            objective="multi:softprob",
            eval_metric="mlogloss",
            tree_method="hist",
            n_estimators=max(int(self.n_estimators), 1),
            early_stopping_rounds=self.early_stopping_rounds if early_stopping else None,
            n_jobs=self.n_jobs,
            random_state=self.seed,
            **(self.params or {}),
        )

    def fit(self, X, y, eval_set: tuple | None = None) -> PlaceTypeXGB:
        X, y = np.asarray(X, dtype="float64"), np.asarray(y, dtype=int)
        if len(y) and (y.min() < 0 or y.max() >= self.n_classes):
            raise ValueError(f"class codes outside 0 … {self.n_classes - 1}: {np.unique(y)}")
        absent = np.setdiff1d(np.arange(self.n_classes), y)
        weight = None
        if len(absent):
            X = np.vstack([X, np.repeat(X[:1], len(absent), axis=0)])
            y = np.concatenate([y, absent])
            weight = np.r_[np.ones(len(y) - len(absent)), np.zeros(len(absent))]
        model = self._classifier(early_stopping=eval_set is not None)
        evals = [tuple(np.asarray(a) for a in eval_set)] if eval_set is not None else None
        model.fit(X, y, sample_weight=weight, eval_set=evals, verbose=False)
        self.estimator_ = model
        self.classes_ = np.arange(self.n_classes)
        best = getattr(model, "best_iteration", None) if eval_set is not None else None
        self.best_iteration_ = int(best) if best is not None else model.n_estimators - 1
        return self

    def decision_function(self, X) -> np.ndarray:
        """Margins (log-odds before the softmax) from trees 0 … ``best_iteration_``."""
        check_is_fitted(self, "estimator_")
        margins = self.estimator_.get_booster().predict(
            xgb.DMatrix(np.asarray(X, dtype="float64"), nthread=self.n_jobs),
            output_margin=True,
            iteration_range=(0, self.best_iteration_ + 1),
        )
        return np.asarray(margins, dtype="float64")

    def predict_proba(self, X) -> np.ndarray:
        return softmax(self.decision_function(X))

    def predict(self, X) -> np.ndarray:
        return self.decision_function(X).argmax(axis=1)


@dataclass
class FittedXGB:
    """A fitted :class:`PlaceTypeXGB` with the features of its design matrix (the protocol's
    record of a variant; the validation log loss when it was fitted with early stopping)."""

    model: PlaceTypeXGB
    features: list[str]
    val_log_loss: float

    @property
    def best_iteration(self) -> int:
        return self.model.best_iteration_

    def margins(self, design: Design, train: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Margins of ``rows`` (not in ``train``): target encodings from all training rows."""
        return self.predict_margins(design.matrix(self.features, train, rows))

    def margins_all(self, design: Design, train: np.ndarray) -> np.ndarray:
        """Margins of every row, from :meth:`Design.scoring_matrix` (out-of-fold encodings for
        the training rows)."""
        return self.predict_margins(design.scoring_matrix(self.features, train))

    def predict_margins(self, x: np.ndarray) -> np.ndarray:
        return self.model.decision_function(x)


def estimator(cfg: PlaceTypeConfig, seed: int | None = None, rounds: int | None = None):
    """The :class:`PlaceTypeXGB` of ``cfg``: ``cfg.max_rounds`` trees with early stopping, or
    ``rounds`` trees without (the refit)."""
    return PlaceTypeXGB(
        n_estimators=cfg.max_rounds if rounds is None else max(rounds, 1),
        early_stopping_rounds=cfg.early_stopping_rounds if rounds is None else None,
        params=dict(cfg.xgb_params),
        seed=cfg.seed if seed is None else seed,
        n_jobs=cfg.n_jobs,
    )


def refit_xgb(
    design: Design, features: Sequence[str], train: np.ndarray, rounds: int, cfg: PlaceTypeConfig
) -> FittedXGB:
    model = estimator(cfg, rounds=rounds)
    model.fit(design.matrix(features, train, None), design.y[train])
    return FittedXGB(model, list(features), float("nan"))


def fit_xgb(
    design: Design,
    features: Sequence[str],
    train: np.ndarray,
    val: np.ndarray,
    cfg: PlaceTypeConfig,
    seed: int | None = None,
) -> FittedXGB:
    y = design.y
    x_val = design.matrix(features, train, val)
    model = estimator(cfg, seed)
    model.fit(design.matrix(features, train, None), y[train], eval_set=(x_val, y[val]))
    return FittedXGB(model, list(features), log_loss(y[val], model.predict_proba(x_val)))


def _stratify(y: np.ndarray) -> np.ndarray | None:
    """Stratify by class when every class has at least 2 rows (merge rarer ones)."""
    counts = np.bincount(y, minlength=K)
    strata = np.where(counts[y] >= 2, y, -1)
    return strata if np.sum(strata == -1) != 1 else np.where(strata == -1, 0, strata)


def split_indices(y: np.ndarray, cfg: PlaceTypeConfig) -> dict[str, np.ndarray]:
    idx = np.arange(len(y))
    dev, test = train_test_split(
        idx, test_size=cfg.test_size, stratify=_stratify(y), random_state=cfg.seed
    )
    dev = np.sort(dev)
    holdout = cfg.val_share + cfg.cal_share
    fit, rest = train_test_split(
        dev, test_size=holdout, stratify=_stratify(y[dev]), random_state=cfg.seed
    )
    val, cal = train_test_split(
        rest,
        test_size=cfg.cal_share / holdout,
        stratify=_stratify(y[rest]),
        random_state=cfg.seed,
    )
    return {k: np.sort(v) for k, v in dict(dev=dev, test=test, fit=fit, val=val, cal=cal).items()}


def run(
    records: pd.DataFrame,
    cfg: PlaceTypeConfig,
    log: Callable[[str], None] = lambda _m: None,
) -> PlaceTypeResult:
    """Fit, select, calibrate and evaluate every model; score the cells. ``records`` needs the
    columns neighbourhood, brand, weekday, period, offence, age, sex, place_type."""
    started = time.perf_counter()
    df = records.reset_index(drop=True)
    y = encode_target(df["place_type"])
    if len(df) < 100:
        raise ValueError(f"too few records for the place-type model: {len(df)} (need ≥ 100)")
    s = split_indices(y, cfg)
    fit, val, cal, dev, test = s["fit"], s["val"], s["cal"], s["dev"], s["test"]
    log(f"records={len(df)} fit={len(fit)} val={len(val)} cal={len(cal)} test={len(test)}")

    preds: dict[str, np.ndarray] = {}
    chosen: dict[str, dict] = {}
    preds["prior"] = np.tile(prior_of(y[dev]), (len(test), 1))

    # ---- frequency baselines: alpha on val (fitted on fit), then refit on the whole dev part
    nb = _codes(df["neighbourhood"])
    nbp = _codes(df["neighbourhood"].astype(str) + "|" + df["period"].astype(str))
    off = _codes(df["offence"])
    onbp = _codes(
        df["offence"].astype(str)
        + "|"
        + df["neighbourhood"].astype(str)
        + "|"
        + df["period"].astype(str)
    )

    def city_prior(train, _rows):
        return prior_of(y[train])

    def offence_prior(train, rows):
        table = np.vstack(
            [
                prior_of(y[train][off[train] == o])
                if np.any(off[train] == o)
                else prior_of(y[train])
                for o in range(off.max() + 1)
            ]
        )
        return table[off[rows]]

    for name, keys, prior_fn in [
        ("freq_neighbourhood", nb, city_prior),
        ("freq_neighbourhood_period", nbp, city_prior),
        ("freq_offence_neighbourhood_period", onbp, offence_prior),
    ]:
        alpha, losses = _choose_alpha(keys, y, fit, val, cfg.alphas, prior_fn)
        preds[name], _ = smoothed_frequencies(
            keys[dev], y[dev], keys[test], alpha, prior_fn(dev, test)
        )
        chosen[name] = {"alpha": alpha, "val_log_loss_by_alpha": losses}
        log(f"{name}: alpha={alpha} val log loss={losses[alpha]:.4f}")

    # ---- XGBoost: feature ablation on val, final model on the kept features
    te_alpha = cfg.te_alpha or chosen["freq_neighbourhood"]["alpha"]
    design = Design(df, y, te_alpha, cfg)
    candidates = [c for c in cfg.candidate_columns if _available(df, c)]
    ablation_rows = []

    val_losses: dict[str, np.ndarray] = {}

    def variant(
        label: str, column: str | None, columns: list[str], seed: int | None = None
    ) -> FittedXGB:
        feats = features_for(columns)
        m = fit_xgb(design, feats, fit, val, cfg, seed)
        p_val = softmax(m.margins(design, fit, val))
        p_test = softmax(m.margins(design, fit, test))
        val_losses[label] = -np.log(np.clip(p_val[np.arange(len(val)), y[val]], EPS, 1.0))
        ablation_rows.append(
            {
                "variant": label,
                "column": column,
                "columns": json.dumps(columns),
                "features": json.dumps(feats),
                "val_log_loss": float(val_losses[label].mean()),
                "test_log_loss": log_loss(y[test], p_test),
                "best_iteration": m.best_iteration,
            }
        )
        log(f"ablation {label}: val log loss {m.val_log_loss:.4f} ({m.best_iteration} trees)")
        return m

    seed_sd = 0.0

    def paired(label: str) -> tuple[float, float]:
        """Mean increase of the per-record val log loss vs all candidates, and its noise: the
        paired standard error (which records are in val) combined with the spread between
        refits of the same model under other seeds (×√2: both fits are noisy)."""
        d = val_losses[label] - val_losses["all candidates"]
        se = float(d.std(ddof=1) / np.sqrt(len(d)))
        return float(d.mean()), float(np.sqrt(se**2 + 2 * seed_sd**2))

    if cfg.run_ablation and len(candidates) > 1:
        variant("all candidates", None, candidates)
        for k in range(1, cfg.noise_seeds + 1):
            variant(f"all candidates, seed {cfg.seed + k}", None, candidates, cfg.seed + k)
        repeats = [r["val_log_loss"] for r in ablation_rows]
        seed_sd = float(np.std(repeats, ddof=1)) if len(repeats) > 1 else 0.0
        kept = []
        for f in candidates:
            label = f"without {f}"
            variant(label, f, [g for g in candidates if g != f])
            mean, noise = paired(label)
            # Kept only with evidence: dropping it worsens val log loss beyond the noise.
            if mean > cfg.keep_tolerance and mean > cfg.keep_z * noise:
                kept.append(f)
        if not kept:  # no evidence for any feature: keep the one whose removal hurts most
            deltas = {f: paired(f"without {f}")[0] for f in candidates}
            kept = [max(deltas, key=deltas.get)]
        final = variant("selected", None, kept)
    else:
        kept = [f for f in candidates if f not in ("age", "sex")]
        final = variant("selected", None, kept)
    ablation = pd.DataFrame(ablation_rows)
    base_val = ablation["val_log_loss"].iloc[0]
    ablation["delta_val_log_loss"] = ablation["val_log_loss"] - base_val
    first = ablation_rows[0]["variant"]
    ablation["delta_noise_sd"] = [
        paired(v)[1] if v.startswith("without ") and first == "all candidates" else np.nan
        for v in ablation["variant"]
    ]
    ablation["z"] = ablation["delta_val_log_loss"] / ablation["delta_noise_sd"]
    ablation["kept"] = [
        (r.column in kept) if isinstance(r.column, str) else None for r in ablation.itertuples()
    ]
    prior_val = log_loss(y[val], np.tile(prior_of(y[fit]), (len(val), 1)))
    ablation["val_log_loss_prior"] = prior_val

    # ---- refit on fit + val with the chosen number of trees, calibrate on cal (never test)
    def finish(model: FittedXGB) -> tuple[FittedXGB, TemperatureScaler, np.ndarray]:
        train = np.sort(np.concatenate([fit, val])) if cfg.refit_on_val else fit
        if cfg.refit_on_val:
            rounds = int(round((model.best_iteration + 1) * len(train) / len(fit)))
            model = refit_xgb(design, model.features, train, rounds, cfg)
        scaler = TemperatureScaler().fit(model.margins(design, train, cal), y[cal])
        return model, scaler, train

    final, scaler, train = finish(final)
    test_margins = final.margins(design, train, test)
    preds["xgboost_uncalibrated"] = softmax(test_margins)
    preds["xgboost"] = scaler.transform(test_margins)
    log(f"temperature={scaler.temperature:.3f} columns={kept} features={final.features}")

    # ---- the same model without the offence: the question the seed system answered (who,
    # which phone, where and when, but not whether it was a robbery or a theft)
    if "offence" in kept and len(kept) > 1:
        blind_cols = [c for c in kept if c != "offence"]
        blind = fit_xgb(design, features_for(blind_cols), fit, val, cfg)
        blind, blind_scaler, blind_train = finish(blind)
        preds["xgboost_no_offence"] = blind_scaler.transform(
            blind.margins(design, blind_train, test)
        )
        log(f"xgboost_no_offence: columns={blind_cols}")

    # ---- held-out metrics and reliability tables
    prior_ll = log_loss(y[test], preds["prior"])
    metric_rows, calib = [], []
    for name, p in preds.items():
        row = {"model": name, **score(y[test], p)}
        row["log_loss_vs_prior"] = row["log_loss"] / prior_ll - 1.0
        table = reliability_table(y[test], p, name, cfg.calibration_bins)
        row["ece"] = expected_calibration_error(table)
        metric_rows.append(row)
        calib.append(table)
    metrics = pd.DataFrame(metric_rows)
    # ECE above is on the 10 equal bins; the published table merges bins under the cell rule
    calibration, bin_counts = merge_small_bins(
        pd.concat(calib, ignore_index=True), cfg.min_cell_records
    )
    log(
        f"calibration bins merged={bin_counts['calibration_bins_merged']} "
        f"suppressed={bin_counts['calibration_bins_suppressed']} "
        f"(< {cfg.min_cell_records} records)"
    )

    # ---- scored cells: mean calibrated probability over each cell's records, ≥ min records.
    # Training rows are scored with their out-of-fold encodings (as the model was fitted), so
    # no published probability uses a record's own label in its neighbourhood encodings.
    p_all = scaler.transform(final.margins_all(design, train))
    probabilities = cell_probabilities(df, p_all, cfg.min_cell_records)
    suppression = suppression_counts(df, cfg.min_cell_records)
    log(
        f"cells published={suppression['cells_published']} "
        f"suppressed={suppression['cells_suppressed']} (< {cfg.min_cell_records} records); "
        f"records published={suppression['records_published']} "
        f"suppressed={suppression['records_suppressed']}"
    )

    info = {
        "features": kept,
        "model_features": final.features,
        "candidates": candidates,
        "temperature": scaler.temperature,
        "best_iteration": final.best_iteration,
        "te_alpha": te_alpha,
        "baselines": chosen,
        "splits": {k: len(v) for k, v in s.items()},
        "records": len(df),
        "training_noise_sd": seed_sd,
        "suppression": {**suppression, **bin_counts},
        "seconds": round(time.perf_counter() - started, 1),
        "xgb_params": cfg.xgb_params,
    }
    return PlaceTypeResult(metrics, calibration, ablation, probabilities, info)


def _available(df: pd.DataFrame, column: str) -> bool:
    """A candidate column is usable when it has at least one value."""
    return column in df.columns and df[column].notna().any()


def _cell_keys(df: pd.DataFrame) -> pd.DataFrame:
    return df[CELL_KEYS].astype("string").fillna("(missing)").reset_index(drop=True)


def suppression_counts(df: pd.DataFrame, min_records: int) -> dict[str, int]:
    """What the suppression rule of :func:`cell_probabilities` publishes and hides: cells and
    records in all, in cells with ≥ ``min_records`` records (published) and in smaller cells
    (suppressed). published + suppressed = total, for cells and for records."""
    n = _cell_keys(df).groupby(CELL_KEYS, sort=False).size()
    kept = n >= min_records
    return {
        "min_cell_records": int(min_records),
        "cells_total": int(len(n)),
        "cells_published": int(kept.sum()),
        "cells_suppressed": int((~kept).sum()),
        "records_total": int(n.sum()),
        "records_published": int(n[kept].sum()),
        "records_suppressed": int(n[~kept].sum()),
    }


def cell_probabilities(df: pd.DataFrame, p: np.ndarray, min_records: int) -> pd.DataFrame:
    """Place-type probabilities per (neighbourhood, weekday, period, brand) cell: the mean of
    the records' calibrated probabilities (so the offence mix observed in the cell is averaged
    over). Cells with fewer than ``min_records`` records are suppressed (counted by
    :func:`suppression_counts`). Long format: one row per cell and place type, with the cell's
    record count and the place type's rank."""
    keys = _cell_keys(df)
    wide = pd.concat([keys, pd.DataFrame(np.asarray(p, dtype="float64"), columns=CLASSES)], axis=1)
    grouped = wide.groupby(CELL_KEYS, sort=True)
    mean = grouped[CLASSES].mean()
    n = grouped.size()
    mean = mean[n >= min_records]
    n = n[n >= min_records]
    if mean.empty:
        cols = [*CELL_KEYS, "place_type", "probability", "rank", "n_records"]
        return pd.DataFrame(columns=cols)
    mean = mean.div(mean.sum(axis=1), axis=0)
    long = mean.stack().rename("probability").reset_index()
    long = long.rename(columns={long.columns[len(CELL_KEYS)]: "place_type"})
    long["rank"] = (
        long.groupby(CELL_KEYS)["probability"].rank(ascending=False, method="first").astype(int)
    )
    long["n_records"] = long.set_index(CELL_KEYS).index.map(n).astype(int)
    return long.sort_values([*CELL_KEYS, "rank"]).reset_index(drop=True)
