"""The new-files sensor (issue 15): a new or changed file in a city's input folder starts a run
of that city's partition of refresh_city; nothing changed, nothing starts."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from orchestration.defs.incidents.sensors import input_fingerprint, new_incident_files


def _tick(cursor: str | None):
    context = dg.build_sensor_context(cursor=cursor)
    result = new_incident_files(context)
    return result, context.cursor


def test_a_new_or_changed_file_starts_that_citys_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    folder = tmp_path / "houston"
    folder.mkdir()
    (folder / "2023.csv").write_text("date,hour,offense,beat,number\n1/1/2023,3,Theft,10H10,1\n")
    monkeypatch.setenv("CRIMECAST_INPUT_HOUSTON", str(folder))
    monkeypatch.setenv("CRIMECAST_INPUT_BOSTON", "sample")  # generated: not watched

    first, cursor = _tick(None)  # what is there now is the baseline
    assert isinstance(first, dg.SkipReason)
    again, cursor = _tick(cursor)
    assert isinstance(again, dg.SkipReason)

    (folder / "2024.csv").write_text("date,hour,offense,beat,number\n1/1/2024,3,Theft,10H10,1\n")
    requests, cursor = _tick(cursor)
    assert [(r.partition_key, r.run_key.split(":")[0]) for r in requests] == [
        ("houston", "houston")
    ]
    assert isinstance(_tick(cursor)[0], dg.SkipReason)

    # a changed file (size and modification time) is new content too
    changed = folder / "2023.csv"
    changed.write_text(changed.read_text() + "1/2/2023,4,Theft,10H10,1\n")
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    (request,) = _tick(cursor)[0]
    assert request.partition_key == "houston"


def test_the_sample_and_missing_inputs_are_not_watched(tmp_path: Path):
    assert input_fingerprint("sample") is None
    assert input_fingerprint(str(tmp_path / "nowhere.csv")) is None


def test_the_sensor_starts_the_partitioned_city_job():
    from orchestration.definitions import defs
    from orchestration.defs.incidents.raw import INCIDENT_PARTITIONS

    sensor = defs.resolve_sensor_def("new_incident_files")
    assert sensor.job_name == "refresh_city"
    assert defs.resolve_job_def("refresh_city").partitions_def == INCIDENT_PARTITIONS
