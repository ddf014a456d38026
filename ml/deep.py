"""Optional LSTM count model (``pip install .[deep]``, torch 2.13 CPU).

Same interface, features and protocol as the other models: each row is forecast from what is
known at its ``origin`` (the direct h-step rows of :func:`ml.features.horizon_features`):

* a sequence of the last ``seq_len`` daily counts up to the origin (from :meth:`observe`),
  divided by their mean (+0.1) so that one network serves busy and quiet series;
* the row's :data:`ml.features.FEATURE_COLUMNS` (standardised with training statistics,
  NaN → 0 plus the same sequence scale), concatenated to the LSTM's last hidden state;
* output: the log of the rate relative to the sequence scale; Poisson negative log-likelihood;
  the point forecast is the Poisson median of the rate, as for the other count models.

Deterministic on CPU (fixed seed, one thread).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from ml.metrics import poisson_median
from ml.models import DEFAULT_FEATURES, describe


class LSTMCountModel(RegressorMixin, BaseEstimator):
    """LSTM count model (module docstring); a scikit-learn estimator whose fitted network is
    ``net_``."""

    name = "lstm"

    def __init__(
        self,
        seq_len: int = 28,
        hidden: int = 32,
        epochs: int = 6,
        batch_size: int = 256,
        learning_rate: float = 3e-3,
        max_train_rows: int = 40_000,
        seed: int = 0,
        point: str = "poisson_median",
        features: tuple[str, ...] = DEFAULT_FEATURES,
    ) -> None:
        self.seq_len = seq_len
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_train_rows = max_train_rows
        self.seed = seed
        self.point = point
        self.features = features

    def observe(self, history: pd.DataFrame) -> LSTMCountModel:
        h = history[["series_id", "ds", "y"]].copy()
        h["ds"] = pd.to_datetime(h["ds"])
        wide = h.pivot(index="ds", columns="series_id", values="y").sort_index()
        self.history_ = wide.reindex(pd.date_range(wide.index.min(), wide.index.max()))
        return self

    # --- tensors ---------------------------------------------------------------------------
    def _sequences(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        if getattr(self, "history_", None) is None:
            raise RuntimeError("call observe(history) first")
        values = self.history_.to_numpy(dtype="float64")
        ci = self.history_.columns.get_indexer(X["series_id"])
        origin = (
            pd.to_datetime(X["origin"])
            if "origin" in X
            else pd.to_datetime(X["ds"]) - pd.Timedelta(days=1)
        )
        oi = self.history_.index.get_indexer(origin)
        idx = oi[:, None] - np.arange(self.seq_len)[::-1][None, :]
        ok = (idx >= 0) & (oi[:, None] >= 0) & (ci[:, None] >= 0)
        seq = np.where(ok, values[np.clip(idx, 0, None), np.clip(ci, 0, None)[:, None]], np.nan)
        finite = np.isfinite(seq)
        count = finite.sum(axis=1)
        total = np.where(finite, seq, 0.0).sum(axis=1)
        scale = np.divide(total, count, out=np.zeros(len(seq)), where=count > 0) + 0.1
        seq = np.nan_to_num(seq / scale[:, None], nan=0.0)
        return seq.astype("float32"), scale.astype("float32")

    def _static(self, X: pd.DataFrame, scale: np.ndarray) -> np.ndarray:
        data = X[list(self.features)].to_numpy(dtype="float64")
        z = (data - self.mean_) / self.std_
        z = np.nan_to_num(z, nan=0.0)
        return np.column_stack([z, np.log(scale)]).astype("float32")

    def _build(self, n_static: int):
        import torch
        from torch import nn

        hidden = self.hidden

        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(1, hidden, batch_first=True)
                self.head = nn.Sequential(
                    nn.Linear(hidden + n_static, hidden), nn.ReLU(), nn.Linear(hidden, 1)
                )

            def forward(self, seq, static):
                _, (h, _) = self.lstm(seq.unsqueeze(-1))
                return self.head(torch.cat([h[-1], static], dim=1)).squeeze(-1)

        return Net()

    def fit(self, X: pd.DataFrame, y) -> LSTMCountModel:
        import torch

        torch.manual_seed(self.seed)
        torch.set_num_threads(1)
        y = np.asarray(y, dtype="float64")
        ok = np.isfinite(y)
        X, y = X.loc[ok], y[ok]
        if len(X) > self.max_train_rows:  # the most recent rows
            keep = np.argsort(pd.to_datetime(X["ds"]).to_numpy(), kind="stable")
            keep = keep[-self.max_train_rows :]
            X, y = X.iloc[keep], y[keep]
        data = X[list(self.features)].to_numpy(dtype="float64")
        with warnings.catch_warnings():  # all-NaN columns (lag_364 on < 1 year) → 0, 1
            warnings.simplefilter("ignore", RuntimeWarning)
            self.mean_ = np.nanmean(data, axis=0)
            self.std_ = np.nanstd(data, axis=0)
        self.mean_ = np.where(np.isfinite(self.mean_), self.mean_, 0.0)
        self.std_ = np.where(np.isfinite(self.std_) & (self.std_ > 0), self.std_, 1.0)
        seq, scale = self._sequences(X)
        static = self._static(X, scale)
        log_scale = np.log(scale)
        net = self._build(static.shape[1])
        opt = torch.optim.Adam(net.parameters(), lr=self.learning_rate)
        t_seq, t_static = torch.from_numpy(seq), torch.from_numpy(static)
        t_y = torch.from_numpy(y.astype("float32"))
        t_ls = torch.from_numpy(log_scale.astype("float32"))
        gen = torch.Generator().manual_seed(self.seed)
        net.train()
        for _ in range(self.epochs):
            perm = torch.randperm(len(t_y), generator=gen)
            for lo in range(0, len(perm), self.batch_size):
                b = perm[lo : lo + self.batch_size]
                log_rate = net(t_seq[b], t_static[b]) + t_ls[b]
                loss = torch.mean(torch.exp(log_rate) - t_y[b] * log_rate)
                opt.zero_grad()
                loss.backward()
                opt.step()
        net.eval()
        self.net_ = net
        self.n_static_ = static.shape[1]
        return self

    def predict_mean(self, X: pd.DataFrame) -> np.ndarray:
        import torch

        check_is_fitted(self, "net_")
        seq, scale = self._sequences(X)
        static = self._static(X, scale)
        with torch.no_grad():
            out = self.net_(torch.from_numpy(seq), torch.from_numpy(static)).numpy()
        return np.exp(out.astype("float64")) * scale

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        mean = self.predict_mean(X)
        return poisson_median(mean) if self.point == "poisson_median" else mean

    def save(self, path: str | Path) -> Path:
        import torch

        path = Path(path).with_suffix(".pt")
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "params": describe(self),
                "state": self.net_.state_dict(),
                "mean": self.mean_,
                "std": self.std_,
                "n_static": self.n_static_,
            },
            path,
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> LSTMCountModel:
        import torch

        blob = torch.load(path, weights_only=False)
        params = dict(blob["params"])
        params.pop("type", None)
        model = cls(**params)
        model.mean_, model.std_, model.n_static_ = blob["mean"], blob["std"], blob["n_static"]
        model.net_ = model._build(model.n_static_)
        model.net_.load_state_dict(blob["state"])
        model.net_.eval()
        return model
