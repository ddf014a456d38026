"""`crimecast run` (what `make run` calls) on the built-in sample: the session's sample
warehouse is built by it (tests/conftest.py keeps what it printed), so this module checks that
run's load runs and build run, the stage timings table, the accuracy summary beside the
baselines and the published copy, without a run of its own."""

from __future__ import annotations

from pathlib import Path

import duckdb
from conftest import SAMPLE_RUN_OUTPUT


def test_run_prints_stage_timings_and_the_out_of_sample_summary(sample_warehouse: Path):
    out = (sample_warehouse.parent / SAMPLE_RUN_OUTPUT).read_text()
    timings = out[out.index("Stage timings (s):") : out.index("Warehouse:")]
    # one load run per city, one for France and São Paulo, then the build run
    for step in (
        "boston: raw_incidents",
        "houston: raw_incidents",
        "france_raw",
        "raw__saopaulo_phone_thefts",
        "build: crimecast_dbt_assets",
        "build: ml_forecasts",
        "build: serving_dbt_assets",
        "build: published__warehouse",
    ):
        assert step in timings, f"{step!r} not in the stage timings:\n{timings}"
    assert any(line.split()[:1] == ["total"] for line in timings.splitlines())
    summary = out[out.index("Warehouse:") :]
    for city in ("boston", "houston"):
        assert f"{city} — out of sample, split 'test'" in summary
    assert "GENERATED SAMPLE" in summary and "mean_28" in summary
    assert "Poisson reference" in summary
    assert "noise floor" not in out  # a model-based reference, not a floor (issue 14)
    assert "france" in summary and "saopaulo" in summary

    published = sample_warehouse.parent / "published" / "crimecast.duckdb"
    con = duckdb.connect(str(published), read_only=True)
    try:
        sources = con.execute("select distinct source from ml.forecasts order by 1").fetchall()
    finally:
        con.close()
    assert sources == [("boston",), ("houston",)]
