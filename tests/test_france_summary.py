"""France headline: last_value is always scored as the reference, and `crimecast summary`
says when the model chosen on validation is worse than last_value on the validation years."""

from __future__ import annotations

import duckdb
import numpy as np
from test_france_intervals import _growing, _mart

from ml import annual
from serving.summary import print_summary


def test_last_value_is_scored_even_when_the_model_list_leaves_it_out():
    features = _mart(_growing(12, seed=4))
    res = annual.backtest(features, annual.SPLITS[0], "region", ["drift"], intervals=True)
    pooled = res.metrics.set_index("model")
    assert res.selected == "drift"
    assert set(pooled.index) == {"drift", "last_value"}
    assert not pooled.loc["last_value", "selected"]
    assert np.isfinite(pooled.loc["last_value", "validation_mae"])
    for model in ("drift", "last_value"):  # coverage of both, on the test year 2024
        assert 0 <= pooled.loc[model, "coverage_80"] <= pooled.loc[model, "coverage_95"] <= 1


def _warehouse(path, validation_mae: dict[str, float]):
    con = duckdb.connect(str(path))
    con.execute("create schema raw; create schema serving")
    con.execute("create table raw.source_files as select 'x' as source, 'a.csv' as source_file")
    con.execute(
        "create table serving.source_status_latest as select 'x' as source, "
        "'forecast' as status, null as skipped_reason, null as test_cutoff, "
        "null as cutoff_note, 'r1' as run_id"
    )
    con.execute(
        "create table serving.france_backtest_metrics_latest (dataset varchar, model varchar, "
        "horizon double, mae double, selected boolean, validation_mae double)"
    )
    for model, val in validation_mae.items():
        con.execute(
            "insert into serving.france_backtest_metrics_latest values "
            "('france_reg_h1', ?, null, 10.0, ?, ?)",
            [model, model == "ridge", val],
        )
    con.close()


def test_summary_flags_a_choice_worse_than_last_value_on_validation(tmp_path, capsys):
    _warehouse(tmp_path / "worse.duckdb", {"ridge": 12.0, "last_value": 11.0})
    print_summary(tmp_path / "worse.duckdb")
    out = capsys.readouterr().out
    assert "ridge" in out and "WORSE than last_value on validation" in out
    _warehouse(tmp_path / "better.duckdb", {"ridge": 10.0, "last_value": 11.0})
    print_summary(tmp_path / "better.duckdb")
    out = capsys.readouterr().out
    assert "chosen on validation" in out and "WORSE" not in out
