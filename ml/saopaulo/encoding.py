"""São Paulo place-type model: features. Smoothed class frequencies per key (the frequency
baselines) and the design matrices, whose neighbourhood target encodings are scikit-learn's
``TargetEncoder`` (out-of-fold for the training rows)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold
from sklearn.preprocessing import TargetEncoder

from ml.saopaulo.metrics import log_loss
from ml.saopaulo.schema import CATEGORICAL, TARGET_ENCODED, K, PlaceTypeConfig


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
        for col in CATEGORICAL:
            self.codes[col] = _codes(df[col]).astype(float)
            self.codes[col][df[col].isna().to_numpy()] = np.nan
        self.age = pd.to_numeric(df["age"], errors="coerce").to_numpy(dtype=float)

    def _encoder(self) -> TargetEncoder:
        # smooth=te_alpha: (class counts + alpha·prior) / (n + alpha), prior = the class
        # frequencies of the rows fitted on (of each fold's training part when out-of-fold)
        folds = KFold(self.cfg.te_folds, shuffle=True, random_state=self.cfg.seed)
        return TargetEncoder(target_type="multiclass", smooth=self.te_alpha, cv=folds)

    def _in_k(self, encoder: TargetEncoder, te: np.ndarray) -> np.ndarray:
        """Encoder columns (one per class seen in training) placed in the K class columns."""
        out = np.zeros((len(te), K))
        out[:, encoder.classes_] = te
        return out

    def _te(self, name: str, train: np.ndarray, rows: np.ndarray) -> np.ndarray:
        keys = self.codes[name]
        encoder = self._encoder().fit(keys[train, None], self.y[train])
        te = self._in_k(encoder, encoder.transform(keys[rows, None]))
        n = np.bincount(keys[train], minlength=keys.max() + 1)[keys[rows]]
        return np.column_stack([te, np.log1p(n)])

    def _te_oof(self, name: str, train: np.ndarray) -> np.ndarray:
        keys = self.codes[name]
        encoder = self._encoder()
        te = self._in_k(encoder, encoder.fit_transform(keys[train, None], self.y[train]))
        # the record counts behind each encoding, out of the same folds
        n = np.zeros(len(train))
        for a, b in encoder.cv.split(train):
            n[b] = np.bincount(keys[train[a]], minlength=keys.max() + 1)[keys[train[b]]]
        return np.column_stack([te, np.log1p(n)])

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
