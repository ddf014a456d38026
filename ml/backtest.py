"""Leak-free backtests: the rolling-origin multi-horizon plan."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from ml.features import MAX_LOOKBACK, horizon_features


def model_name(model) -> str:
    return getattr(model, "name", None) or type(model).__name__


def fit_mask(
    frame: pd.DataFrame, before: date | str | None = None, train_days: int | None = None
) -> np.ndarray:
    """Rows a fit uses: ``ds < before`` (all rows if None) with a known ``y``; only the last
    ``train_days`` days of them when given. One rule for :func:`fit_frame` and the window
    that ``ml.runs.train_window`` records."""
    ds = pd.to_datetime(frame["ds"])
    mask = frame["y"].notna().to_numpy()
    if before is not None:
        mask &= (ds < pd.Timestamp(before)).to_numpy()
    if train_days is not None and mask.any():
        mask &= (ds > ds[mask].max() - pd.Timedelta(days=train_days)).to_numpy()
    return mask


def fit_frame(
    model, frame: pd.DataFrame, before: date | str | None = None, train_days: int | None = None
):
    """Fit ``model`` on the rows of :func:`fit_mask`."""
    train = frame.loc[fit_mask(frame, before, train_days)]
    if train.empty:
        raise ValueError("no training rows")
    model.fit(train, train["y"].to_numpy(dtype="float64"))
    return model


# --- rolling-origin, multi-horizon backtest -------------------------------------------------

ROLLING_COLUMNS = [
    "series_id",
    "ds",
    "origin",
    "model",
    "prediction",
    "prediction_mean",
    "actual",
    "split",
    "cutoff",
    "horizon",
    "noise_lambda",
]


#: days of history before each cutoff that every fit uses in the ``lean`` profile (``full``: all)
LEAN_TRAIN_DAYS = 182


@dataclass(frozen=True)
class BacktestPlan:
    """Rolling-origin plan: ``n_cutoffs`` validation cutoffs ``window`` days apart, placed so
    that every horizon's validation targets end the day before the test cutoff (the test
    window never serves model choice or calibration)."""

    horizons: tuple[int, ...] = (1, 7, 28)
    n_cutoffs: int = 4
    window: int = 28
    #: fit on the last ``train_days`` days before each cutoff only (None: all history)
    train_days: int | None = None

    def history_start(self, test_cutoff) -> pd.Timestamp | None:
        """First day of history any fit or feature of this plan reads (None: all history).

        With ``train_days``, the earliest fit starts ``train_days`` before the first validation
        cutoff, and its direct h-step features look back ``max(horizons)`` + the longest lag
        (364 days) from there; rows before that day change no number of the run."""
        if self.train_days is None:
            return None
        first = self.cv_cutoffs(test_cutoff)[0]
        return first - pd.Timedelta(days=self.train_days + max(self.horizons) + MAX_LOOKBACK + 1)

    def covering(self, horizon: int) -> BacktestPlan:
        """This plan, plus ``horizon`` when it is longer than its horizons (every operational
        step needs a backtested horizon at least as long)."""
        if horizon <= max(self.horizons):
            return self
        return BacktestPlan(
            horizons=(*sorted(self.horizons), horizon),
            n_cutoffs=self.n_cutoffs,
            window=self.window,
            train_days=self.train_days,
        )

    def cv_cutoffs(self, test_cutoff) -> list[pd.Timestamp]:
        """Ascending validation cutoffs: ``test_cutoff − (H − 1) − window·j``, j = n … 1."""
        test_cutoff = pd.Timestamp(test_cutoff)
        lead = max(self.horizons) - 1
        return [
            test_cutoff - pd.Timedelta(days=lead + self.window * j)
            for j in range(self.n_cutoffs, 0, -1)
        ]


def _targets(frame_h: pd.DataFrame, cutoff, horizon: int, window: int | None, end):
    """Rows whose origin is in ``[cutoff − 1, cutoff − 1 + window)`` (all later ones when
    ``window`` is None), with a known actual, up to ``end``."""
    ds = frame_h["ds"]
    first = cutoff + pd.Timedelta(days=horizon - 1)
    mask = ds >= first
    if window is not None:
        mask &= ds < first + pd.Timedelta(days=window)
    if end is not None:
        mask &= ds <= pd.Timestamp(end)
    mask &= frame_h["y"].notna()
    return frame_h.loc[mask.to_numpy()]


def rolling_backtest(
    frame: pd.DataFrame,
    model_factory: Callable[[], Mapping[str, object]],
    test_cutoff,
    plan: BacktestPlan | None = None,
    test_end=None,
    log: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, dict[tuple[str, int], object]]:
    """Refit-per-cutoff backtest of every model at every horizon (direct strategy).

    For each cutoff (``plan.cv_cutoffs(test_cutoff)`` → split ``cv``, then ``test_cutoff`` →
    split ``test``) and horizon h, a FRESH model from ``model_factory()`` is fitted on the rows
    whose target day is before the cutoff, with the direct h-step features
    (:func:`ml.features.horizon_features`: only what is known h days before the target), and
    predicts the target days whose origin (target − h) lies in the ``window`` days from the day
    before the cutoff (test: every later day up to ``test_end``). Models with
    ``horizon_agnostic = True`` are fitted once per cutoff. ``observe(frame)`` is called on
    models that have it (they must use only ``y`` up to each row's origin).

    Returns the predictions (:data:`ROLLING_COLUMNS`) and the fitted TEST-split models keyed
    by (name, horizon).
    """
    with threadpool_limits(1):  # 1 BLAS/OpenMP thread: 5-20x faster on a shared 2-core box
        return _rolling_backtest(frame, model_factory, test_cutoff, plan, test_end, log)


def _rolling_backtest(frame, model_factory, test_cutoff, plan, test_end, log):
    plan = plan or BacktestPlan()
    test_cutoff = pd.Timestamp(test_cutoff)
    frames = {h: horizon_features(frame, h) for h in plan.horizons}
    splits = [(c, "cv", plan.window) for c in plan.cv_cutoffs(test_cutoff)]
    splits.append((test_cutoff, "test", None))
    out: list[pd.DataFrame] = []
    fitted: dict[tuple[str, int], object] = {}
    for cutoff, split, window in splits:
        names = list(model_factory())
        for name in names:
            t0 = time.perf_counter()
            model = None
            for h in plan.horizons:
                fh = frames[h]
                test = _targets(fh, cutoff, h, window, test_end if split == "test" else None)
                if test.empty:
                    continue
                agnostic_ready = model is not None and getattr(model, "horizon_agnostic", False)
                if not agnostic_ready:
                    model = model_factory()[name]
                    if hasattr(model, "observe"):
                        model.observe(frame)
                    fit_frame(model, fh, before=cutoff, train_days=plan.train_days)
                point = np.asarray(model.predict(test), dtype="float64")
                mean_fn = getattr(model, "predict_mean", None)
                mean = point if mean_fn is None else np.asarray(mean_fn(test), dtype="float64")
                out.append(
                    pd.DataFrame(
                        {
                            "series_id": test["series_id"].to_numpy(),
                            "ds": test["ds"].to_numpy(),
                            "origin": test["origin"].to_numpy(),
                            "model": name,
                            "prediction": point,
                            "prediction_mean": mean,
                            "actual": test["y"].to_numpy(dtype="float64"),
                            "split": split,
                            "cutoff": cutoff,
                            "horizon": h,
                            "noise_lambda": test["noise_lambda"].to_numpy(dtype="float64"),
                        }
                    )
                )
                if split == "test":
                    fitted[(name, h)] = model
            if log is not None:
                log(f"  {split} {cutoff.date()} {name}: {time.perf_counter() - t0:.1f}s")
    return pd.concat(out, ignore_index=True)[ROLLING_COLUMNS], fitted


def profile_plan(profile: str, train_days: int | None = None) -> BacktestPlan:
    """The default plan of an ML profile (:data:`ml.zoo.PROFILES`): ``lean`` fits on the last
    :data:`LEAN_TRAIN_DAYS` days, ``full`` on all history; ``train_days`` overrides both."""
    if train_days is None and profile == "lean":
        train_days = LEAN_TRAIN_DAYS
    return BacktestPlan(train_days=train_days)
