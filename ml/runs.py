"""``ml.model_runs`` records: one row per fitted model, with its saved artifact."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ml.backtest import fit_mask
from ml.models import describe


def train_window(
    frame: pd.DataFrame, cutoff: date | str | None = None, train_days: int | None = None
) -> tuple[date, date]:
    """First and last ``ds`` a fit on ``frame`` uses: the known ``y`` before ``cutoff`` (all
    rows when None), the last ``train_days`` days of them when given (as ``fit_frame``)."""
    ds = pd.to_datetime(frame["ds"])
    mask = fit_mask(frame, cutoff, train_days)
    if not mask.any():
        raise ValueError("empty training window")
    return ds[mask].min().date(), ds[mask].max().date()


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):  # numpy scalar
        return _json_value(value.item())
    if isinstance(value, (date, datetime, pd.Timestamp)):
        return value.isoformat()
    return value


def _dumps(obj: Mapping[str, Any] | list | None) -> str:
    if obj is None:
        return "null"
    if isinstance(obj, Mapping):
        obj = {str(k): _json_value(v) for k, v in obj.items()}
    else:
        obj = [_json_value(v) for v in obj]
    return json.dumps(obj, sort_keys=isinstance(obj, dict), allow_nan=False)


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(part)) or "_"


def model_run_record(
    *,
    run_id: str,
    source: str,
    model,
    name: str | None = None,
    artifact_name: str | None = None,
    train_start: date | None,
    train_end: date | None,
    cutoff: date | str | None,
    metrics: Mapping[str, Any] | None = None,
    artifact_dir: str | Path | None = None,
    started_at: datetime | None = None,
) -> dict[str, Any]:
    """One ``ml.model_runs`` row; saves the fitted model under ``artifact_dir`` when given.

    The artifact goes to ``<artifact_dir>/<run_id>/<source>/<artifact_name or name>.json``
    (XGBoost ``save_model`` JSON, a small JSON description for the baselines, Holt-Winters and
    the ensemble; a model's ``save`` may change the suffix: ``.pkl`` for scikit-learn,
    ``.pt`` for the LSTM); ``artifact_path`` is the absolute path actually written (None when
    no directory is given). ``params`` is :func:`ml.models.describe` (class name and
    scikit-learn parameters, ``features`` left to their own column); ``params``, ``features`` and
    ``metrics`` are JSON strings. ``cutoff`` is None for the operational model trained on all
    history.
    """
    label = name or getattr(model, "name", None) or type(model).__name__
    artifact_path = None
    if artifact_dir is not None:
        stem = _safe(artifact_name or label)
        target = Path(artifact_dir) / _safe(run_id) / _safe(source) / f"{stem}.json"
        artifact_path = str(model.save(target).resolve())
    params = describe(model) if hasattr(model, "get_params") else {}
    features = list(getattr(model, "features", []))
    return {
        "run_id": run_id,
        "started_at": started_at or datetime.now(UTC).replace(tzinfo=None),
        "source": source,
        "model": label,
        "params": _dumps({k: v for k, v in params.items() if k != "features"}),
        "train_start": train_start,
        "train_end": train_end,
        "cutoff": None if cutoff is None else pd.Timestamp(cutoff).date(),
        "features": _dumps(features),
        "metrics": _dumps(metrics),
        "artifact_path": artifact_path,
    }
