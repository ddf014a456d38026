"""ml.runs: the ml.* output frames and model_runs records follow docs/architecture.md."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.backtest import backtest_one_step
from ml.features import build_features
from ml.forecast import forecast_recursive
from ml.models import Mean28, XGBCountModel
from ml.runs import (
    backtest_metrics_table,
    backtest_predictions_table,
    forecasts_table,
    metrics_for,
    model_run_record,
    train_window,
)

# Column lists copied from docs/architecture.md (ML layer).
CONTRACT = {
    "forecasts": "run_id, as_of_date, source, area, category, series_id, date, horizon, model, "
    "forecast",
    "backtest_predictions": "run_id, source, series_id, area, category, split, cutoff, date, "
    "horizon, model, prediction, actual",
    "backtest_metrics": "run_id, source, split, cutoff, model, horizon, mae, rmse, n, "
    "noise_floor_mae",
    "model_runs": "run_id, started_at, source, model, params, train_start, train_end, cutoff, "
    "features, metrics, artifact_path",
}


def cols(name: str) -> list[str]:
    return [c.strip() for c in CONTRACT[name].split(",")]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    dates = pd.date_range("2024-01-01", periods=90)
    parts = [
        pd.DataFrame({"series_id": sid, "ds": dates, "y": rng.poisson(2.0, len(dates))})
        for sid in ("boston|A1|Larceny", "boston|B2|Larceny", "houston|10|theft")
    ]
    return build_features(pd.concat(parts, ignore_index=True))


def test_output_tables_follow_the_contract(frame):
    preds = backtest_one_step(frame, "2024-03-01", [Mean28()])
    bp = backtest_predictions_table(preds, "run1", split="test")
    assert list(bp.columns) == cols("backtest_predictions")
    assert set(bp["source"]) == {"boston", "houston"}
    row = bp[bp.series_id == "houston|10|theft"].iloc[0]
    assert (row["area"], row["category"], row["cutoff"]) == ("10", "theft", date(2024, 3, 1))

    bm = backtest_metrics_table(preds, "run1")
    assert list(bm.columns) == cols("backtest_metrics")
    assert bm.set_index("source")["n"].to_dict() == {"boston": 2 * 30, "houston": 30}

    fc = forecasts_table(forecast_recursive(frame, Mean28(), horizon=3), "run1", date(2024, 3, 30))
    assert list(fc.columns) == cols("forecasts")
    assert len(fc) == 9 and fc["date"].min() == date(2024, 3, 31)


def test_model_run_record_saves_the_artifact_and_serialises_json(frame, tmp_path):
    cutoff = "2024-03-01"
    model = XGBCountModel(n_estimators=10)
    preds = backtest_one_step(frame, cutoff, [model])
    metrics = metrics_for(backtest_metrics_table(preds, "r").query("source == 'boston'"), "xgboost")
    start, end = train_window(frame, cutoff)
    assert (start, end) == (date(2024, 1, 1), date(2024, 2, 29))

    rec = model_run_record(
        run_id="r/1",
        source="boston",
        model=model,
        train_start=start,
        train_end=end,
        cutoff=cutoff,
        metrics={**metrics, "extra": float("nan")},
        artifact_dir=tmp_path,
    )
    assert list(rec) == cols("model_runs")
    assert rec["cutoff"] == date(2024, 3, 1)
    params = json.loads(rec["params"])
    assert params["objective"] == "count:poisson" and params["n_estimators"] == 10
    assert json.loads(rec["features"])[0] == "lag_1"
    loaded = json.loads(rec["metrics"])
    assert loaded["n"] == metrics["n"] and loaded["extra"] is None
    path = rec["artifact_path"]
    assert path.startswith(str(tmp_path)) and path.endswith("boston/xgboost.json")
    assert "learner" in json.loads(Path(path).read_text())  # xgboost save_model JSON

    no_artifact = model_run_record(
        run_id="r", source="boston", model=Mean28(), train_start=start, train_end=end, cutoff=None
    )
    assert no_artifact["artifact_path"] is None and no_artifact["metrics"] == "null"
