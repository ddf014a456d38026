"""`crimecast run` (what `make run` calls): the load runs and the build run on the sample, the
stage timings table and the accuracy summary beside the baselines, on a temporary warehouse."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from orchestration.cli import main


def test_run_prints_stage_timings_and_the_out_of_sample_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    warehouse = tmp_path / "w" / "crimecast.duckdb"
    monkeypatch.setenv("CRIMECAST_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("CRIMECAST_SOURCES", "houston")
    # the 25 largest series are enough to print the tables (the whole sample: tests/test_pipeline)
    monkeypatch.setenv("CRIMECAST_SERIES_PRESET", "top5x5")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    for name in ("CRIMECAST_CUTOFF", "CRIMECAST_PUBLISHED", "CRIMECAST_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)

    assert main(["run"]) == 0
    out = capsys.readouterr().out
    timings = out[out.index("Stage timings (s):") :]
    for step in ("raw_incidents", "crimecast_dbt_assets", "ml_forecasts", "published__warehouse"):
        assert step in timings
    assert "GENERATED SAMPLE" in out and "mean_28" in out and "Poisson reference" in out
    assert "noise floor" not in out  # a model-based reference, not a floor (issue 14)

    published = warehouse.parent / "published" / "crimecast.duckdb"
    con = duckdb.connect(str(published), read_only=True)
    try:
        sources = con.execute("select distinct source from ml.forecasts").fetchall()
    finally:
        con.close()
    assert sources == [("houston",)]
