"""The blocking contract checks on raw/incidents (orchestration/defs/serving/publish.py), one
evaluation per city partition: a source that shrinks while its input stays the same fails
`volume` (ERROR) every time, not only once (the baseline is the last passed evaluation, kept in
the warehouse); the freshness check turns into an ERROR only when CRIMECAST_MAX_DATA_AGE_DAYS
is set."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from test_reliability_corpus import HH, csv_text, houston_ok

from orchestration.definitions import build_resources
from orchestration.defs.incidents.raw import raw_incidents
from orchestration.defs.serving.publish import (
    raw_incidents_freshness,
    raw_incidents_volume,
    volume_problems,
)


def test_volume_problems_compare_with_the_same_input_only():
    prev = {"houston": {"rows": 100, "input": "a.csv"}}
    assert volume_problems({"houston": 90}, {"houston": "a.csv"}, prev, 20.0) == []
    (problem,) = volume_problems({"houston": 70}, {"houston": "a.csv"}, prev, 20.0)
    assert "30.0 % fewer" in problem and "a.csv" in problem
    # re-pointed input: a new baseline, no failure
    assert volume_problems({"houston": 70}, {"houston": "b.csv"}, prev, 20.0) == []
    # a zero limit is a real limit
    assert volume_problems({"houston": 99}, {"houston": "a.csv"}, prev, 0.0) != []
    assert volume_problems({"houston": 0}, {"houston": "a.csv"}, {}, 20.0) == [
        "houston: no rows in raw.incidents"
    ]


def _check_results(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


@pytest.fixture
def houston_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    data = tmp_path / "houston.csv"
    monkeypatch.setenv("CRIMECAST_WAREHOUSE", str(tmp_path / "w" / "crimecast.duckdb"))
    monkeypatch.setenv("CRIMECAST_SOURCES", "houston")
    monkeypatch.setenv("CRIMECAST_INPUT_HOUSTON", str(data))
    monkeypatch.delenv("CRIMECAST_MAX_SHRINK_PCT", raising=False)
    monkeypatch.delenv("CRIMECAST_MAX_DATA_AGE_DAYS", raising=False)
    (tmp_path / "w").mkdir()
    return {"data": data, "warehouse": tmp_path / "w" / "crimecast.duckdb"}


def test_a_shrunken_input_fails_volume_until_it_recovers(houston_env: dict):
    instance = dg.DagsterInstance.ephemeral()
    assets = [raw_incidents, raw_incidents_volume, raw_incidents_freshness]
    resources = build_resources(houston_env["warehouse"])

    def load(rows: int) -> dict[str, bool]:
        houston_env["data"].write_text(csv_text(HH, houston_ok(rows)))
        result = dg.materialize(
            assets,
            resources=resources,
            instance=instance,
            raise_on_error=False,
            partition_key="houston",
        )
        return _check_results(result)

    assert load(10)["volume"] is True
    assert load(5)["volume"] is False  # 50 % fewer rows from the same input
    assert load(5)["volume"] is False  # a failed evaluation is no new baseline
    assert load(9)["volume"] is True  # 10 % fewer than the last good load of 10


def test_freshness_is_an_error_only_with_a_limit(houston_env: dict, monkeypatch):
    houston_env["data"].write_text(csv_text(HH, houston_ok(3)))
    assets = [raw_incidents, raw_incidents_volume, raw_incidents_freshness]
    resources = build_resources(houston_env["warehouse"])

    def freshness() -> dg.AssetCheckEvaluation:
        result = dg.materialize(
            assets, resources=resources, raise_on_error=False, partition_key="houston"
        )
        (ev,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "freshness"]
        return ev

    ev = freshness()  # incidents of 2023, loaded now: old, but no limit → WARN
    assert ev.severity == dg.AssetCheckSeverity.WARN and not ev.passed
    monkeypatch.setenv("CRIMECAST_MAX_DATA_AGE_DAYS", "100000")
    ev = freshness()
    assert ev.severity == dg.AssetCheckSeverity.ERROR and ev.passed
    monkeypatch.setenv("CRIMECAST_MAX_DATA_AGE_DAYS", "30")
    ev = freshness()
    assert ev.severity == dg.AssetCheckSeverity.ERROR and not ev.passed
