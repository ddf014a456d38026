"""São Paulo place-type model: held-out metrics (scikit-learn's), reliability tables, the
published (merged) calibration bins and temperature scaling."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, f1_score, top_k_accuracy_score
from sklearn.metrics import log_loss as _sk_log_loss

from ml.saopaulo.schema import CLASSES, EPS


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean negative log probability of the true class (natural log), over all K classes."""
    return float(_sk_log_loss(y, p, labels=np.arange(p.shape[1])))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Multi-class Brier score: mean over records of Σ_k (p_k − 1[y = k])² (0 best, 2 worst)."""
    return float(brier_score_loss(y, p, labels=np.arange(p.shape[1])))


def top_k(y: np.ndarray, p: np.ndarray, k: int) -> float:
    if k >= p.shape[1]:  # sklearn warns that every label is then in the top k
        return 1.0
    return float(top_k_accuracy_score(y, p, k=k, labels=np.arange(p.shape[1])))


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
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows = []
    for j, name in enumerate(classes):
        pj = p[:, j]
        hit = (y == j).astype(int)
        observed, predicted = calibration_curve(hit, pj, n_bins=bins, strategy="uniform")
        # calibration_curve drops empty bins and gives no counts: the same binning for them
        index = np.searchsorted(edges[1:-1], pj)
        count = np.bincount(index, minlength=bins)
        for i, obs, pred in zip(np.flatnonzero(count), observed, predicted, strict=True):
            rows.append(
                {
                    "model": model,
                    "class": name,
                    "bin": int(i),
                    "bin_lower": i / bins,
                    "bin_upper": (i + 1) / bins,
                    "mean_predicted": float(pred),
                    "observed_frequency": float(obs),
                    "count": int(count[i]),
                }
            )
    return pd.DataFrame(rows)


def expected_calibration_error(table: pd.DataFrame) -> float:
    """Mean over classes of the one-vs-rest expected calibration error: Σ_bins count/n ×
    |mean predicted − observed frequency|, from a :func:`reliability_table` of one model."""
    gap = (table["mean_predicted"] - table["observed_frequency"]).abs() * table["count"]
    per_class = gap.groupby(table["class"]).sum() / table.groupby("class")["count"].sum()
    return float(per_class.mean())


def merge_small_bins(table: pd.DataFrame, min_records: int) -> tuple[pd.DataFrame, dict]:
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
