"""São Paulo phone robberies and thefts: where does it happen? A calibrated place-type classifier.

Plain Python (no Dagster). Input: the records of ``marts.saopaulo_phone_theft_records`` (one row
per robbery/theft, columns ``neighbourhood, brand, weekday, period, offence, age, sex,
place_type``). Output: held-out metrics per model, a reliability table, a feature ablation and
a scored table of place-type probabilities per (neighbourhood, weekday, period, brand) cell.

Protocol (everything with a fixed seed):

* test split: random 25 % of the records, stratified by place type; touched only for the final
  scores (and the informative ``test_log_loss`` column of the ablation, used for no decision);
* the other 75 % ("development") is split, stratified, into ``fit`` (60 %), ``val`` (20 %) and
  ``cal`` (20 %): models are fitted on ``fit``; smoothing strengths, XGBoost's number of trees
  and the feature set are chosen on ``val``; the final XGBoost is refitted on ``fit`` + ``val``
  with that number of trees (scaled to the larger set); the temperature is fitted on ``cal``;
* the frequency baselines are refitted on the whole development part once their smoothing
  strength is chosen (they need no calibration), which can only favour them.

Models:

* ``prior`` — class frequencies of the development part, the same for every record;
* ``freq_neighbourhood`` — class counts per neighbourhood plus ``alpha`` × the city prior
  (additive/Dirichlet smoothing, ``alpha`` chosen on ``val``): a neighbourhood with few records
  stays near the city prior; an unseen one gets the prior;
* ``freq_neighbourhood_period`` — the same per neighbourhood × period;
* ``freq_offence_neighbourhood_period`` — the same per offence × neighbourhood × period, smoothed
  toward the offence's prior: the lookup table that knows everything the model's strongest
  features know, to show what the model adds beyond counting;
* ``xgboost_uncalibrated`` / ``xgboost`` — multi:softprob XGBoost on the selected features,
  before / after temperature scaling;
* ``xgboost_no_offence`` — the calibrated model without the offence (ROUBO/FURTO) column, the
  question the seed system answered (profile, phone, neighbourhood, time; not the offence).

Neighbourhoods (1,285 in the real file, half with fewer than 5 records) enter the model as
target encodings: the smoothed class frequencies of the neighbourhood (and of its crossings with
offence and period, see :func:`features_for`) plus log(1 + records), computed out-of-fold
(5 folds) on the training rows and from all training rows for the other rows, so no row sees
its own label. This holds for the published table too: its records are scored with
:meth:`Design.scoring_matrix` (the training rows keep the out-of-fold encodings the model was
fitted on). Feature selection: see :func:`run` and docs/saopaulo.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xgboost as xgb
from scipy.optimize import minimize_scalar
from sklearn.metrics import f1_score
from sklearn.model_selection import KFold, train_test_split

#: The 10 place-type groups, as named in the derived SSP extract
#: (dbt_project/seeds/saopaulo_place_types.csv maps raw SSP subtypes onto them). The order is the
#: column order of every probability matrix.
CLASSES: list[str] = [
    "Via Publica",
    "Transporte Publico",
    "Residencia / Hospedagem",
    "Estabelecimentos Comerciais / Industrias",
    "Transporte Privado",
    "Alimentacao",
    "Entreterimento",
    "Saude",
    "Escolas / Universidade",
    "Escritorios",
]
K = len(CLASSES)

#: Candidate input columns. The ablation drops one COLUMN at a time (with every feature built
#: from it), so that redundant encodings of one column cannot hide each other. IDADE (age) and
#: SEXO (sex) are RANDOM in the derived extract: they are candidates so that the ablation shows it.
CANDIDATE_COLUMNS: list[str] = [
    "neighbourhood",
    "period",
    "weekday",
    "brand",
    "offence",
    "age",
    "sex",
]
#: Target-encoded features and the columns whose combination is the key.
TARGET_ENCODED: dict[str, list[str]] = {
    "neighbourhood": ["neighbourhood"],
    "neighbourhood_period": ["neighbourhood", "period"],
    "offence_neighbourhood": ["offence", "neighbourhood"],
    "offence_neighbourhood_period": ["offence", "neighbourhood", "period"],
}
#: Columns entering the model as integer codes (XGBoost splits on them like ordinals).
_CATEGORICAL = ["period", "weekday", "brand", "offence", "sex"]
#: Key columns of the scored table; cells built from fewer than `min_cell_records` are dropped.
CELL_KEYS = ["neighbourhood", "weekday", "period", "brand"]
EPS = 1e-15


@dataclass
class PlaceTypeConfig:
    seed: int = 42
    test_size: float = 0.25
    val_share: float = 0.20  # of the development part
    cal_share: float = 0.20  # of the development part
    alphas: Sequence[float] = (0.5, 1, 2, 5, 10, 20, 50, 100)
    te_folds: int = 5
    te_alpha: float | None = None  # None: the alpha chosen for freq_neighbourhood
    candidate_columns: Sequence[str] = tuple(CANDIDATE_COLUMNS)
    #: a column is kept when dropping it worsens the validation log loss by more than
    #: `keep_tolerance` AND by more than `keep_z` noise standard deviations (paired per-record
    #: standard error combined with the seed-to-seed spread of the full model)
    keep_tolerance: float = 0.0
    keep_z: float = 2.0
    #: extra fits of the all-candidates model under other seeds, to measure training noise
    noise_seeds: int = 2
    run_ablation: bool = True
    xgb_params: dict = field(
        default_factory=lambda: {
            "eta": 0.08,
            "max_depth": 3,
            "min_child_weight": 10.0,
            "subsample": 0.8,
            "colsample_bytree": 0.8,
            "lambda": 10.0,
            "max_bin": 64,
        }
    )
    max_rounds: int = 1500
    early_stopping_rounds: int = 50
    #: XGBoost threads. 1 by default: with the 2 cores shared by other processes, OpenMP
    #: threads oversubscribe and a 2-thread fit was 20× slower than a 1-thread one.
    n_jobs: int = 1
    calibration_bins: int = 10
    min_cell_records: int = 5
    #: refit the final model on fit + val (trees scaled by the size ratio) before calibrating
    refit_on_val: bool = True


# --------------------------------------------------------------------------- metrics


def _onehot(y: np.ndarray, k: int = K) -> np.ndarray:
    out = np.zeros((len(y), k))
    out[np.arange(len(y)), y] = 1.0
    return out


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean negative log probability of the true class (natural log)."""
    y = np.asarray(y)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], EPS, 1.0))))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Multi-class Brier score: mean over records of Σ_k (p_k − 1[y = k])² (0 best, 2 worst)."""
    return float(np.mean(np.sum((p - _onehot(np.asarray(y), p.shape[1])) ** 2, axis=1)))


def top_k(y: np.ndarray, p: np.ndarray, k: int) -> float:
    top = np.argsort(-p, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == np.asarray(y)[:, None], axis=1)))


def macro_f1(y: np.ndarray, p: np.ndarray) -> float:
    """Macro F1 of the arg-max prediction over the classes present in ``y``."""
    labels = np.unique(y)
    return float(f1_score(y, p.argmax(axis=1), labels=labels, average="macro", zero_division=0))


def score(y: np.ndarray, p: np.ndarray) -> dict:
    return {
        "log_loss": log_loss(y, p),
        "brier": brier(y, p),
        "top1": top_k(y, p, 1),
        "top3": top_k(y, p, 3),
        "macro_f1": macro_f1(y, p),
        "n": len(y),
    }


def reliability_table(
    y: np.ndarray, p: np.ndarray, model: str, bins: int = 10, classes: Sequence[str] = CLASSES
) -> pd.DataFrame:
    """One-vs-rest reliability bins per class: equal-width bins of the predicted probability
    ([0, 1/bins), …, [1 − 1/bins, 1]); empty bins are omitted. Columns: model, class, bin
    (0-based), bin_lower, bin_upper, mean_predicted, observed_frequency, count."""
    y = np.asarray(y)
    rows = []
    for j, name in enumerate(classes):
        pj = p[:, j]
        b = np.minimum((pj * bins).astype(int), bins - 1)
        hit = (y == j).astype(float)
        for i in np.unique(b):
            m = b == i
            rows.append(
                {
                    "model": model,
                    "class": name,
                    "bin": int(i),
                    "bin_lower": i / bins,
                    "bin_upper": (i + 1) / bins,
                    "mean_predicted": float(pj[m].mean()),
                    "observed_frequency": float(hit[m].mean()),
                    "count": int(m.sum()),
                }
            )
    return pd.DataFrame(rows)


def expected_calibration_error(table: pd.DataFrame) -> float:
    """Mean over classes of the one-vs-rest expected calibration error: Σ_bins count/n ×
    |mean predicted − observed frequency|, from a :func:`reliability_table` of one model."""
    gap = (table["mean_predicted"] - table["observed_frequency"]).abs() * table["count"]
    per_class = gap.groupby(table["class"]).sum() / table.groupby("class")["count"].sum()
    return float(per_class.mean())


def merge_small_bins(table: pd.DataFrame, min_records: int = 5) -> tuple[pd.DataFrame, dict]:
    """The published form of a :func:`reliability_table`: per model and class, neighbouring
    bins are merged left to right until each holds ≥ ``min_records`` records (a small last
    group joins the one before; the suppression rule of :func:`cell_probabilities`). A merged
    bin keeps its first ``bin``, spans ``bin_lower``–``bin_upper`` and has count-weighted
    means. A class with fewer records in all is suppressed. Returns (table, counts)."""
    out, merged, suppressed = [], 0, 0
    for _key, group in table.sort_values("bin").groupby(["model", "class"], sort=False):
        groups: list[list[dict]] = []
        pending: list[dict] = []
        for row in group.to_dict("records"):
            pending.append(row)
            if sum(r["count"] for r in pending) >= min_records:
                groups.append(pending)
                pending = []
        if pending and groups:
            groups[-1] += pending
        elif pending:  # the whole class has fewer records than the rule allows
            suppressed += len(pending)
        for rows in groups:
            n = sum(r["count"] for r in rows)
            merged += len(rows) - 1
            out.append(
                {
                    **rows[0],
                    "bin_upper": rows[-1]["bin_upper"],
                    "mean_predicted": sum(r["mean_predicted"] * r["count"] for r in rows) / n,
                    "observed_frequency": sum(r["observed_frequency"] * r["count"] for r in rows)
                    / n,
                    "count": n,
                }
            )
    result = pd.DataFrame(out, columns=table.columns)
    return result, {"calibration_bins_merged": merged, "calibration_bins_suppressed": suppressed}


# --------------------------------------------------------------------------- calibration


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass
class TemperatureScaler:
    """Temperature scaling: p = softmax(logit / T), one T > 0 fitted by maximum likelihood on a
    calibration split. T = 1 is the identity; T > 1 softens over-confident predictions."""

    temperature: float = 1.0

    def fit(self, logits: np.ndarray, y: np.ndarray) -> TemperatureScaler:
        y = np.asarray(y)

        def nll(log_t: float) -> float:
            return log_loss(y, softmax(logits / np.exp(log_t)))

        res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
        # Never worse than the identity on the calibration split.
        self.temperature = float(np.exp(res.x)) if res.fun < nll(0.0) else 1.0
        return self

    def transform(self, logits: np.ndarray) -> np.ndarray:
        return softmax(logits / self.temperature)


def logits_of(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(p, EPS, 1.0))


# --------------------------------------------------------------------------- frequency models


def _codes(values: pd.Series | np.ndarray) -> np.ndarray:
    return pd.factorize(pd.Series(values).astype("string").fillna("\x00"), sort=False)[0]


def _key_codes(df: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    key = df[cols[0]].astype("string").fillna("\x00")
    for c in cols[1:]:
        key = key + "|" + df[c].astype("string").fillna("\x00")
    return _codes(key)


def _counts(keys: np.ndarray, y: np.ndarray, n_keys: int) -> np.ndarray:
    c = np.zeros((n_keys, K))
    np.add.at(c, (keys, y), 1.0)
    return c


def smoothed_frequencies(
    keys_train: np.ndarray,
    y_train: np.ndarray,
    keys_eval: np.ndarray,
    alpha: float,
    prior: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(counts + alpha·prior) / (n + alpha) of each eval key in the training rows, and n.
    ``keys_*`` are integer codes from one factorization; ``prior`` is (K,) or (n_eval, K)."""
    n_keys = int(max(keys_train.max(initial=-1), keys_eval.max(initial=-1))) + 1
    c = _counts(keys_train, y_train, n_keys)[keys_eval]
    n = c.sum(axis=1, keepdims=True)
    return (c + alpha * prior) / (n + alpha), n[:, 0]


def prior_of(y: np.ndarray) -> np.ndarray:
    return np.bincount(y, minlength=K) / len(y)


def _choose_alpha(
    keys: np.ndarray, y: np.ndarray, fit: np.ndarray, val: np.ndarray, alphas, prior_fn
) -> tuple[float, dict]:
    losses = {}
    for a in alphas:
        p, _ = smoothed_frequencies(keys[fit], y[fit], keys[val], a, prior_fn(fit, val))
        losses[float(a)] = log_loss(y[val], p)
    best = min(losses, key=losses.get)
    return best, losses


# --------------------------------------------------------------------------- features


def features_for(columns: Sequence[str]) -> list[str]:
    """Model features built from a set of input columns. The neighbourhood enters as target
    encodings: of the neighbourhood, and of its crossing with offence and period when those
    columns are used (offence × neighbourhood, offence × neighbourhood × period, or
    neighbourhood × period without offence)."""
    cols = set(columns)
    feats = []
    if "neighbourhood" in cols:
        feats.append("neighbourhood")
        if "offence" in cols:
            feats.append("offence_neighbourhood")
            if "period" in cols:
                feats.append("offence_neighbourhood_period")
        elif "period" in cols:
            feats.append("neighbourhood_period")
    feats += [c for c in ("period", "weekday", "brand", "offence", "sex", "age") if c in cols]
    return feats


class Design:
    """Builds feature matrices for a set of features, with target encodings computed from the
    training rows only (out-of-fold for the training rows themselves)."""

    def __init__(self, df: pd.DataFrame, y: np.ndarray, te_alpha: float, cfg: PlaceTypeConfig):
        self.df = df
        self.y = y
        self.te_alpha = te_alpha
        self.cfg = cfg
        self.codes = {name: _key_codes(df, cols) for name, cols in TARGET_ENCODED.items()}
        for col in _CATEGORICAL:
            self.codes[col] = _codes(df[col]).astype(float)
            self.codes[col][df[col].isna().to_numpy()] = np.nan
        self.age = pd.to_numeric(df["age"], errors="coerce").to_numpy(dtype=float)

    def _te(self, name: str, train: np.ndarray, rows: np.ndarray) -> np.ndarray:
        keys, y = self.codes[name], self.y
        prior = prior_of(y[train])
        te, n = smoothed_frequencies(keys[train], y[train], keys[rows], self.te_alpha, prior)
        return np.column_stack([te, np.log1p(n)])

    def _te_oof(self, name: str, train: np.ndarray) -> np.ndarray:
        out = np.zeros((len(train), K + 1))
        folds = KFold(self.cfg.te_folds, shuffle=True, random_state=self.cfg.seed)
        for a, b in folds.split(train):
            out[b] = self._te(name, train[a], train[b])
        return out

    def columns(self, features: Sequence[str]) -> list[str]:
        cols = []
        for f in features:
            if f in TARGET_ENCODED:
                cols += [f"{f}_p{j}" for j in range(K)] + [f"{f}_log_n"]
            else:
                cols.append(f)
        return cols

    def matrix(
        self, features: Sequence[str], train: np.ndarray, rows: np.ndarray | None
    ) -> np.ndarray:
        """Features of ``rows`` (None: the training rows, target encodings out-of-fold)."""
        blocks = []
        for f in features:
            if f in TARGET_ENCODED:
                blocks.append(self._te_oof(f, train) if rows is None else self._te(f, train, rows))
            elif f == "age":
                blocks.append(self.age[train if rows is None else rows][:, None])
            else:
                blocks.append(self.codes[f][train if rows is None else rows][:, None])
        return np.column_stack(blocks)

    def scoring_matrix(self, features: Sequence[str], train: np.ndarray) -> np.ndarray:
        """Features of EVERY row (in row order) as a model fitted on ``train`` saw them: the
        training rows get their out-of-fold target encodings (the very matrix the model was
        fitted on), the other rows encodings from all training rows. No row's encoding includes
        its own label (scoring all rows with ``matrix(features, train, all rows)`` would give the
        training rows encodings that count their own label)."""
        train = np.asarray(train)
        fitted = self.matrix(features, train, None)
        out = np.empty((len(self.y), fitted.shape[1]))
        out[train] = fitted
        others = np.setdiff1d(np.arange(len(self.y)), train)
        if len(others):
            out[others] = self.matrix(features, train, others)
        return out


@dataclass
class FittedXGB:
    booster: xgb.Booster
    features: list[str]
    best_iteration: int
    val_log_loss: float

    def margins(self, design: Design, train: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Margins of ``rows`` (not in ``train``): target encodings from all training rows."""
        return self.predict_margins(design.matrix(self.features, train, rows))

    def margins_all(self, design: Design, train: np.ndarray) -> np.ndarray:
        """Margins of every row, from :meth:`Design.scoring_matrix` (out-of-fold encodings for
        the training rows)."""
        return self.predict_margins(design.scoring_matrix(self.features, train))

    def predict_margins(self, x: np.ndarray) -> np.ndarray:
        margins = self.booster.predict(
            xgb.DMatrix(x), output_margin=True, iteration_range=(0, self.best_iteration + 1)
        )
        return np.asarray(margins, dtype="float64")


def _params(cfg: PlaceTypeConfig, seed: int | None = None) -> dict:
    return {
        "objective": "multi:softprob",
        "num_class": K,
        "eval_metric": "mlogloss",
        "tree_method": "hist",
        "nthread": cfg.n_jobs,
        "seed": cfg.seed if seed is None else seed,
        **cfg.xgb_params,
    }


def refit_xgb(
    design: Design, features: Sequence[str], train: np.ndarray, rounds: int, cfg: PlaceTypeConfig
) -> FittedXGB:
    dtrain = xgb.DMatrix(design.matrix(features, train, None), label=design.y[train])
    booster = xgb.train(_params(cfg), dtrain, num_boost_round=max(rounds, 1))
    return FittedXGB(booster, list(features), max(rounds, 1) - 1, float("nan"))


def fit_xgb(
    design: Design,
    features: Sequence[str],
    train: np.ndarray,
    val: np.ndarray,
    cfg: PlaceTypeConfig,
    seed: int | None = None,
) -> FittedXGB:
    y = design.y
    dtrain = xgb.DMatrix(design.matrix(features, train, None), label=y[train])
    dval = xgb.DMatrix(design.matrix(features, train, val), label=y[val])
    booster = xgb.train(
        _params(cfg, seed),
        dtrain,
        num_boost_round=cfg.max_rounds,
        evals=[(dval, "val")],
        early_stopping_rounds=cfg.early_stopping_rounds,
        verbose_eval=False,
    )
    best = int(booster.best_iteration)
    p = booster.predict(dval, iteration_range=(0, best + 1))
    return FittedXGB(booster, list(features), best, log_loss(y[val], p))


# --------------------------------------------------------------------------- the whole run


@dataclass
class PlaceTypeResult:
    metrics: pd.DataFrame
    calibration: pd.DataFrame
    ablation: pd.DataFrame
    probabilities: pd.DataFrame
    info: dict


def encode_target(place_type: pd.Series) -> np.ndarray:
    index = {c: i for i, c in enumerate(CLASSES)}
    y = place_type.map(index)
    if y.isna().any():
        bad = sorted(place_type[y.isna()].astype(str).unique())[:5]
        raise ValueError(f"place types outside the 10 groups: {bad}")
    return y.to_numpy(dtype=int)


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
    cfg: PlaceTypeConfig | None = None,
    log: Callable[[str], None] = lambda _m: None,
) -> PlaceTypeResult:
    """Fit, select, calibrate and evaluate every model; score the cells. ``records`` needs the
    columns neighbourhood, brand, weekday, period, offence, age, sex, place_type."""
    cfg = cfg or PlaceTypeConfig()
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


def suppression_counts(df: pd.DataFrame, min_records: int = 5) -> dict[str, int]:
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


def cell_probabilities(df: pd.DataFrame, p: np.ndarray, min_records: int = 5) -> pd.DataFrame:
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


# --------------------------------------------------------------------------- warehouse I/O

RECORDS_SQL = """
select neighbourhood, brand, weekday, period, offence, age, sex, place_type
from marts.saopaulo_phone_theft_records
order by source_file, source_row
"""


def load_records(con) -> pd.DataFrame:
    """The usable records from the dbt mart (a DuckDB connection)."""
    return con.execute(RECORDS_SQL).df()


def write_results(con, result: PlaceTypeResult, run_id: str) -> dict[str, int]:
    """Replace ml.saopaulo_metrics, _calibration, _ablation, _place_probabilities in one
    transaction. Every row carries run_id."""
    tables = {
        "saopaulo_metrics": result.metrics,
        "saopaulo_calibration": result.calibration,
        "saopaulo_ablation": result.ablation,
        "saopaulo_place_probabilities": result.probabilities,
    }
    con.execute("begin transaction")
    try:
        con.execute("create schema if not exists ml")
        for name, frame in tables.items():
            out = frame.copy()
            out.insert(0, "run_id", run_id)
            view = f"_{name}_df"
            con.register(view, out)
            con.execute(f"create or replace table ml.{name} as select * from {view}")
            con.unregister(view)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return {name: len(frame) for name, frame in tables.items()}
