"""One city is one partition (issue 12): the raw incident assets have a partition per source
mapping; a run for one partition loads that city only, and `crimecast run` (one run per city)
fails the run of a city whose file is bad while the other cities load, forecast and publish."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
from test_hostile_runs import boston_header_only, houston_file, run_cli, site  # noqa: F401

from ingest.mapping import discover_mappings
from orchestration.config import SOURCES_DIR


def _rows_by_source(warehouse: Path) -> dict[str, int]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return dict(
            con.execute("select source, count(*) from raw.incidents group by source").fetchall()
        )
    finally:
        con.close()


def test_a_partition_per_source_mapping_on_the_raw_assets_and_the_job() -> None:
    from orchestration.definitions import build_defs, run_plan
    from orchestration.defs.incidents.raw import INCIDENT_PARTITIONS, raw_incidents, select_sources

    names = [p.stem for p in discover_mappings(SOURCES_DIR)]
    assert INCIDENT_PARTITIONS.get_partition_keys() == names == ["boston", "houston"]
    assert raw_incidents.partitions_def == INCIDENT_PARTITIONS
    job = build_defs().resolve_job_def("refresh_all")
    assert job.partitions_def == INCIDENT_PARTITIONS
    # crimecast run: the raw load of each city in its own run, France's and São Paulo's in
    # one, then one build run
    plan = run_plan(select_sources(None))
    assert [(p.job, p.partition) for p in plan] == [
        ("load_city", "boston"),
        ("load_city", "houston"),
        ("load_datasets", None),
        ("build_and_publish", None),
    ]
    assert [p.label for p in run_plan(select_sources(["houston", "france"]))] == [
        "houston",
        "france",
        "build",
    ]
    # the load runs hold the raw assets and crimecast's raw checks only (no dbt); the build
    # run everything below them, the dbt tests of the raw sources included
    defs = build_defs(selection=select_sources(None))
    ops = {
        j: {n.name for n in defs.resolve_job_def(j).graph.nodes}
        for j in ("load_city", "load_datasets", "build_and_publish")
    }
    assert ops["load_city"] == {
        "raw_incidents",
        "raw__incidents_volume",
        "raw__incidents_freshness",
    }
    assert ops["load_datasets"] == {"france_raw", "raw__saopaulo_phone_thefts"}
    assert {"crimecast_dbt_assets", "ml_forecasts", "published__warehouse"} <= ops[
        "build_and_publish"
    ]
    assert not ops["build_and_publish"] & (ops["load_city"] | ops["load_datasets"])


def test_materializing_one_partition_loads_only_that_city(site) -> None:  # noqa: F811
    from orchestration.definitions import build_resources
    from orchestration.defs.incidents.raw import raw_incidents
    from orchestration.defs.serving.publish import raw_incidents_freshness, raw_incidents_volume

    site["env"](CRIMECAST_INPUT_HOUSTON=str(houston_file(site["root"] / "h.csv", days=3)))
    assets = [raw_incidents, raw_incidents_volume, raw_incidents_freshness]
    result = dg.materialize(assets, resources=build_resources(), partition_key="houston")
    assert result.success
    assert _rows_by_source(site["warehouse"]) == {"houston": 6}
    (mat,) = [
        m
        for m in result.get_asset_materialization_events()
        if m.asset_key == dg.AssetKey(["raw", "incidents"])
    ]
    assert mat.partition == "houston"
    assert mat.step_materialization_data.materialization.metadata["dagster/row_count"].value == 6
    # the checks evaluate the partition's city only
    assert {(e.check_name, e.passed) for e in result.get_asset_check_evaluations()} >= {
        ("volume", True)
    }
    # a bad Boston file fails Boston's partition and leaves Houston as loaded
    site["env"](CRIMECAST_INPUT_BOSTON=str(boston_header_only(site["root"] / "b.csv")))
    bad = dg.materialize(
        assets, resources=build_resources(), partition_key="boston", raise_on_error=False
    )
    assert not bad.success
    assert _rows_by_source(site["warehouse"]) == {"houston": 6}


def test_make_run_fails_only_the_city_with_the_bad_file(site, capsys) -> None:  # noqa: F811
    boston = boston_header_only(site["root"] / "b.csv")
    site["env"](
        CRIMECAST_SOURCES="boston,houston",
        CRIMECAST_INPUT_BOSTON=str(boston),
        CRIMECAST_INPUT_HOUSTON=str(houston_file(site["root"] / "h.csv", days=5)),
    )
    code, out, err = run_cli(capsys)
    assert code == 1
    assert err.strip().splitlines()[-1].startswith(f"FAILED raw_incidents: boston: {boston}: ")
    # Houston loaded, then the build modelled it (too short to forecast: skipped with the
    # reason) and published
    assert _rows_by_source(site["warehouse"]) == {"houston": 10}
    assert "Runs that succeeded: houston, build; failed: boston" in out
    assert "build: published__warehouse" in out
    con = duckdb.connect(str(site["warehouse"]), read_only=True)
    try:
        status = con.execute("select source, status from ml.source_status").fetchall()
    finally:
        con.close()
    assert status == [("houston", "skipped")]
    instance = dg.DagsterInstance.get()
    runs = {
        r.dagster_run.tags.get("dagster/partition"): r.dagster_run.status
        for r in instance.get_run_records()
    }
    assert runs == {
        "boston": dg.DagsterRunStatus.FAILURE,
        "houston": dg.DagsterRunStatus.SUCCESS,
        None: dg.DagsterRunStatus.SUCCESS,  # the build run
    }


def test_the_daily_schedule_sends_one_run_per_city_then_france_and_saopaulo() -> None:
    from datetime import UTC, datetime

    from orchestration.definitions import build_defs
    from orchestration.defs.incidents.raw import RAW_INCIDENTS, select_sources

    defs = build_defs(selection=select_sources(["houston", "france"]))
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2024, 1, 1, 6, tzinfo=UTC),
        repository_def=defs.get_repository_def(),
    )
    requests = defs.resolve_schedule_def("daily_refresh").evaluate_tick(context).run_requests
    assert [(r.run_key, r.partition_key) for r in requests] == [
        ("2024-01-01:houston", "houston"),
        ("2024-01-01:france_saopaulo", None),
    ]
    houston, france = (set(r.asset_selection) for r in requests)
    assert RAW_INCIDENTS in houston and dg.AssetKey(["raw", "france_regional"]) not in houston
    assert RAW_INCIDENTS not in france and dg.AssetKey(["raw", "france_regional"]) in france
