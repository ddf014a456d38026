"""ml.runs: the training window and the ``ml.model_runs`` records that ml/pipeline.py writes."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.backtest import fit_frame
from ml.features import build_features
from ml.models import Mean28, XGBCountModel, load_model
from ml.runs import model_run_record, train_window

REPO_ROOT = Path(__file__).resolve().parents[1]


def documented_model_runs_columns() -> list[str]:
    """The column list of ``ml.model_runs`` in docs/forecasting.md ("Tables")."""
    text = (REPO_ROOT / "docs" / "forecasting.md").read_text(encoding="utf-8")
    match = re.search(r"\*\*`ml\.model_runs`\*\* — (.+?)\n\n", text, flags=re.S)
    assert match, "docs/forecasting.md lists no ml.model_runs columns"
    listed = re.sub(r"\([^)]*\)", "", " ".join(match.group(1).split())).rstrip(".")
    return [c.strip() for c in listed.split(",")]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    dates = pd.date_range("2024-01-01", periods=90)
    parts = [
        pd.DataFrame({"series_id": sid, "ds": dates, "y": rng.poisson(2.0, len(dates))})
        for sid in ("boston|A1|Larceny", "boston|B2|Larceny", "houston|10|theft")
    ]
    return build_features(pd.concat(parts, ignore_index=True))


def test_train_window_is_the_known_days_before_the_cutoff(frame):
    assert train_window(frame) == (date(2024, 1, 1), date(2024, 3, 30))
    assert train_window(frame, "2024-03-01") == (date(2024, 1, 1), date(2024, 2, 29))
    assert train_window(frame, date(2024, 3, 1)) == train_window(frame, "2024-03-01")
    # days without a known count (future rows, a series that starts late) are not training days
    future = pd.DataFrame(
        {
            "series_id": "boston|A1|Larceny",
            "ds": pd.date_range("2024-03-31", periods=5),
            "y": np.nan,
        }
    )
    late = frame.assign(y=frame["y"].where(frame["ds"] >= "2024-01-10"))
    assert train_window(pd.concat([late, future], ignore_index=True)) == (
        date(2024, 1, 10),
        date(2024, 3, 30),
    )
    with pytest.raises(ValueError, match="empty training window"):
        train_window(frame, "2024-01-01")


def test_train_window_with_train_days_is_the_window_the_fit_uses(frame):
    """With ``train_days`` the recorded start is the fit's first day, not the first day read."""
    assert train_window(frame, "2024-03-01", train_days=14) == (
        date(2024, 2, 16),
        date(2024, 2, 29),
    )
    assert train_window(frame, train_days=30) == (date(2024, 3, 1), date(2024, 3, 30))

    class Seen:
        def fit(self, X, y):
            self.days = pd.to_datetime(X["ds"])
            return self

    seen = fit_frame(Seen(), frame, before="2024-03-01", train_days=14)
    assert (seen.days.min().date(), seen.days.max().date()) == train_window(
        frame, "2024-03-01", train_days=14
    )


def test_model_run_record_as_the_pipeline_writes_it(frame, tmp_path):
    cutoff = "2024-03-01"
    model = fit_frame(XGBCountModel(n_estimators=10), frame, before=cutoff)
    start, end = train_window(frame, cutoff)
    started = datetime(2024, 3, 31, 12, 0, 0)
    # metrics as ml.pipeline._model_runs builds them: numpy scalars from a leaderboard row,
    # a missing value and the list of validation cutoffs
    board = pd.DataFrame({"mae": [1.25], "n": [60], "coverage_80": [np.nan]})
    row = board.iloc[0]
    metrics = {k: row[k] for k in board.columns} | {"cv_cutoffs": ["2024-02-01", "2024-02-15"]}

    rec = model_run_record(
        run_id="r/1",
        source="boston",
        model=model,
        name="xgboost",
        artifact_name="xgboost_h7",
        train_start=start,
        train_end=end,
        cutoff=cutoff,
        metrics=metrics,
        artifact_dir=tmp_path,
        started_at=started,
    )
    # the pipeline adds horizon and role to each record
    assert [*rec, "horizon", "role"] == documented_model_runs_columns()
    assert rec["run_id"] == "r/1" and rec["source"] == "boston" and rec["model"] == "xgboost"
    assert rec["started_at"] == started
    assert (rec["train_start"], rec["train_end"]) == (date(2024, 1, 1), date(2024, 2, 29))
    assert rec["cutoff"] == date(2024, 3, 1)

    params = json.loads(rec["params"])
    assert params["objective"] == "count:poisson" and params["n_estimators"] == 10
    assert "features" not in params  # they have their own column
    assert json.loads(rec["features"]) == list(model.features) and model.features[0] == "lag_1"
    assert json.loads(rec["metrics"]) == {
        "coverage_80": None,  # NaN is not JSON
        "cv_cutoffs": ["2024-02-01", "2024-02-15"],
        "mae": 1.25,
        "n": 60,
    }
    assert rec["metrics"].index('"coverage_80"') < rec["metrics"].index('"n"')  # sorted keys

    # <artifact_dir>/<run_id, made path-safe>/<source>/<artifact_name>.json, absolute
    path = Path(rec["artifact_path"])
    assert path == (tmp_path / "r_1" / "boston" / "xgboost_h7.json").resolve()
    assert "learner" in json.loads(path.read_text())  # xgboost save_model JSON
    np.testing.assert_allclose(load_model(path).predict_mean(frame), model.predict_mean(frame))


def test_operational_record_without_artifact_or_metrics(frame):
    start, end = train_window(frame)
    rec = model_run_record(
        run_id="r", source="houston", model=Mean28(), train_start=start, train_end=end, cutoff=None
    )
    assert rec["model"] == "mean_28"  # the model's own name when none is given
    assert rec["cutoff"] is None and rec["artifact_path"] is None
    assert rec["metrics"] == "null"
    assert json.loads(rec["params"]) == {"type": "Mean28"}  # no parameters: the column is below
    assert json.loads(rec["features"]) == ["roll_mean_28"]
    assert isinstance(rec["started_at"], datetime) and rec["started_at"].tzinfo is None


def test_record_of_a_model_without_name_params_or_features(tmp_path):
    class Spec:  # like the pipeline's ensemble spec, but bare
        def save(self, path):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}")
            return path

    rec = model_run_record(
        run_id="r",
        source="boston",
        model=Spec(),
        train_start=None,
        train_end=None,
        cutoff=None,
        artifact_dir=tmp_path,
    )
    assert rec["model"] == "Spec"
    assert rec["params"] == "{}" and rec["features"] == "[]"
    assert rec["artifact_path"] == str((tmp_path / "r" / "boston" / "Spec.json").resolve())


def test_pipeline_records_the_train_days_window_not_the_first_day_read(frame):
    """ml.pipeline writes the window the fits used: with ``train_days`` the last days before
    the cutoff (backtest models) or before the end of the data (operational models)."""
    from ml.backtest import BacktestPlan
    from ml.pipeline import RunConfig, run_source

    config = RunConfig(
        run_id="window",
        test_cutoff=date(2024, 3, 16),
        horizon=7,
        profile="lean",
        models=["mean_7", "mean_28"],
        plan=BacktestPlan(horizons=(1, 7), n_cutoffs=1, window=7, train_days=30),
        started_at=datetime(2024, 4, 1),
    )
    frames, _ = run_source("boston", frame, [], config, log=lambda _m: None)
    runs = frames["model_runs"]
    backtest = runs[runs["role"] == "backtest_test"]
    operational = runs[runs["role"] == "operational"]
    assert len(backtest) and len(operational)
    assert set(zip(backtest["train_start"], backtest["train_end"], strict=True)) == {
        (date(2024, 2, 15), date(2024, 3, 15))
    }
    assert set(zip(operational["train_start"], operational["train_end"], strict=True)) == {
        (date(2024, 3, 1), date(2024, 3, 30))
    }
