"""Champion selection from the validation backtests (never from the test window), and the
ensemble pseudo-model.

Rule, per source and horizon, on the ``cv`` rows only:

1. the SOURCE champion is the model with the lowest pooled MAE over the rows every candidate
   predicted (ties: lower RMSE, then name);
2. each series is judged on its own rows, or, when it is sparse (mean validation count
   below ``sparse_mean``), on the pooled rows of its category group (all sparse series of
   the same category of that source);
3. the group's best model replaces the source champion only when its advantage is clear: the
   mean paired difference of absolute errors exceeds ``z`` standard errors. Otherwise the
   source champion stays: per-series choice among near-equal models mostly fits noise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ml.features import split_series_id
from ml.metrics import common_errors, poisson_median

CHAMPION_COLUMNS = [
    "source",
    "series_id",
    "horizon",
    "model",
    "selected_by",
    "group_key",
    "cv_mae",
    "source_champion",
    "source_champion_cv_mae",
    "n_cv",
]
ENSEMBLE = "ensemble"


def ensemble_members_by_horizon(
    cv: pd.DataFrame, candidates: Sequence[str], reference: str = "mean_28", min_members: int = 2
) -> dict[int, list[str]]:
    """Members of the ensemble per horizon, chosen on the VALIDATION rows only: the candidate
    (learned) models whose pooled cv MAE beats the ``reference`` baseline at that horizon; when
    fewer than ``min_members`` do, the ``min_members`` best candidates."""
    cv = cv[cv["split"] == "cv"] if "split" in cv.columns else cv
    out: dict[int, list[str]] = {}
    for h, g in cv.groupby("horizon", sort=True):
        present = [m for m in candidates if m in set(g["model"])]
        if len(present) < min_members:
            continue
        wide, _ = common_errors(g, present + ([reference] if reference in set(g["model"]) else []))
        if wide.empty:
            continue
        maes = wide.mean()
        ref = maes.get(reference, np.inf)
        ranked = sorted(present, key=lambda m: (maes[m], m))
        good = [m for m in ranked if maes[m] < ref]
        out[int(h)] = good if len(good) >= min_members else ranked[:min_members]
    return out


def add_ensemble(
    preds: pd.DataFrame, members: Mapping[int, Sequence[str]] | Sequence[str], name: str = ENSEMBLE
) -> pd.DataFrame:
    """Append the ensemble rows: mean of the members' expected counts, Poisson-median point.

    ``members`` is a list, or a dict horizon → list (:func:`ensemble_members_by_horizon`).
    Only rows predicted by every member get an ensemble row. No extra fitting: the ensemble
    of each cutoff is made of that cutoff's fitted members.
    """
    key = ["series_id", "ds", "split", "cutoff", "horizon"]
    parts = [preds]
    for h in sorted(preds["horizon"].unique()):
        mem = members.get(int(h), []) if isinstance(members, Mapping) else list(members)
        if not mem:
            continue
        sub = preds[
            (preds["horizon"] == h) & preds["model"].isin(mem) & preds["prediction_mean"].notna()
        ]
        g = sub.groupby(key, sort=False).agg(
            prediction_mean=("prediction_mean", "mean"),
            n_members=("model", "nunique"),
            origin=("origin", "first"),
            actual=("actual", "first"),
            noise_lambda=("noise_lambda", "first"),
        )
        g = g[g["n_members"] == len(set(mem))].drop(columns="n_members").reset_index()
        g["model"] = name
        g["prediction"] = poisson_median(g["prediction_mean"].to_numpy())
        parts.append(g[[c for c in preds.columns if c in g.columns]])
    return pd.concat(parts, ignore_index=True)


def _choose(w: pd.DataFrame, champ: str, z: float) -> tuple[pd.DataFrame, str | None]:
    """The group's validation errors ``w`` and the model that beats the source champion on
    them by more than ``z`` standard errors of the paired difference (None: keep ``champ``)."""
    best = w.mean().sort_values(kind="stable").index[0]
    if best == champ:
        return w, None
    d = (w[champ] - w[best]).to_numpy()
    se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.inf
    return w, (best if d.mean() > z * se else None)


def select_champions(
    cv: pd.DataFrame,
    candidates: Sequence[str] | None = None,
    sparse_mean: float = 0.5,
    z: float = 2.0,
) -> pd.DataFrame:
    """One row per (series, horizon) with the chosen model (:data:`CHAMPION_COLUMNS`)."""
    cv = cv[cv["split"] == "cv"] if "split" in cv.columns else cv
    parts = split_series_id(cv["series_id"])
    cv = cv.assign(source=parts["source"].to_numpy(), category=parts["category"].to_numpy())
    rows = []
    for (source, h), g in cv.groupby(["source", "horizon"], sort=True):
        models = sorted(candidates or g["model"].unique())
        models = [m for m in models if m in set(g["model"])]
        wide, sq = common_errors(g, models)
        if wide.empty:
            continue
        pooled = pd.DataFrame({"mae": wide.mean(), "rmse": np.sqrt(sq.mean())})
        pooled = pooled.sort_values(["mae", "rmse"]).reset_index(names="model")
        champ = pooled.loc[0, "model"]
        champ_mae = float(pooled.loc[0, "mae"])
        series_mean = g.groupby("series_id")["actual"].mean()
        cats = g.drop_duplicates("series_id").set_index("series_id")["category"]
        # a sparse series is judged with the other sparse series of its category: its group key
        sparse = {s: series_mean.get(s, 0.0) < sparse_mean for s in cats.index}
        keys = {s: f"{source}|*|{cats[s]} (sparse)" if sparse[s] else s for s in cats.index}
        row_keys = pd.Index(wide.index.get_level_values("series_id")).map(keys)
        decided = {key: _choose(w, champ, z) for key, w in wide.groupby(row_keys.to_numpy())}
        for sid in sorted(g["series_id"].unique()):
            key = keys[sid]
            if key not in decided:
                continue
            w, best = decided[key]
            chosen, by = champ, "source"
            if best is not None:
                chosen, by = best, "category_group" if sparse[sid] else "series"
            rows.append(
                {
                    "source": source,
                    "series_id": sid,
                    "horizon": int(h),
                    "model": chosen,
                    "selected_by": by,
                    "group_key": key,
                    "cv_mae": float(w[chosen].mean()),
                    "source_champion": champ,
                    "source_champion_cv_mae": champ_mae,
                    "n_cv": int(len(w)),
                }
            )
    return pd.DataFrame(rows, columns=CHAMPION_COLUMNS)


def champion_rows(preds: pd.DataFrame, champions: pd.DataFrame, name: str = "champion"):
    """The champion's own rows of ``preds`` (any split), relabelled ``model = name`` with the
    model that made each row in ``champion_model``."""
    pick = champions[["series_id", "horizon", "model"]].rename(columns={"model": "champion_model"})
    out = preds.merge(pick, on=["series_id", "horizon"], how="inner")
    out = out[out["model"] == out["champion_model"]].copy()
    out["model"] = name
    return out.reset_index(drop=True)
