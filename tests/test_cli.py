"""`crimecast run` (what `make run` calls) on the built-in sample: the session's sample
warehouse is built by it (tests/conftest.py keeps what it printed), so this module checks that
run's load runs and build run, the stage timings table, the accuracy summary beside the
baselines and the published copy, without a run of its own."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
from conftest import SAMPLE_DAGSTER_HOME, SAMPLE_RUN_OUTPUT


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


def test_the_runs_are_listed_on_their_job_pages(sample_warehouse: Path):
    """The Dagster UI's job page asks for the runs of the job name with the tag
    ``.dagster/repository = __repository__@crimecast`` (the code location `make dev` serves):
    every run `crimecast run` made is found by that filter, under its own job."""
    from dagster._core.storage.tags import REPOSITORY_LABEL_TAG

    from orchestration.cli import REPOSITORY_LABEL_TAG as cli_tag
    from orchestration.definitions import BUILD_JOB

    assert cli_tag == REPOSITORY_LABEL_TAG  # the name Dagster's UI filters on
    label = "__repository__@crimecast"  # pyproject's [tool.dagster] code_location_name
    home = sample_warehouse.parent.parent / SAMPLE_DAGSTER_HOME
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs()
        assert len(runs) >= 3, "the sample's load runs and build run"
        jobs = {r.job_name for r in runs}
        assert BUILD_JOB in jobs
        for job in jobs:
            page = instance.get_runs(
                dg.RunsFilter(job_name=job, tags={REPOSITORY_LABEL_TAG: label})
            )
            assert {r.run_id for r in page} == {r.run_id for r in runs if r.job_name == job}
