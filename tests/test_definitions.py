"""The Definitions find this virtualenv's dbt even when the process runs through the base
interpreter with the venv not on PATH, as `dagster dev`'s code server does."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from orchestration import definitions


def test_dbt_executable_is_found_from_the_venv_prefix(monkeypatch: pytest.MonkeyPatch):
    venv_dbt = Path(sys.prefix) / "bin" / "dbt"
    assert venv_dbt.exists()
    monkeypatch.setattr(sys, "executable", "/usr/bin/python3")
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert definitions._dbt_executable() == str(venv_dbt)
    # the resource starts dbt through its guard (dies with its parent), which runs that dbt
    guard = Path(definitions.build_resources()["dbt"].dbt_executable)
    assert guard.stat().st_mode & 0o111
    assert f"os.execv({str(venv_dbt)!r}" in guard.read_text()


def test_a_dbt_step_keeps_only_its_newest_target_folders(tmp_path: Path) -> None:
    """dagster-dbt writes a target folder per invocation and never removes one: each dbt step
    prunes its own to the newest KEEP_TARGETS (the current one always kept), other steps'
    folders untouched."""
    import os

    from orchestration.defs.dbt import KEEP_TARGETS, prune_targets

    def folder(name: str, age_s: int) -> Path:
        path = tmp_path / name
        path.mkdir()
        os.utime(path, (1_000_000 - age_s, 1_000_000 - age_s))
        return path

    mine = [folder(f"crimecast_dbt_assets-run{i:04d}-u{i:06d}", age_s=i) for i in range(9)]
    current = folder("crimecast_dbt_assets-runzzzz-uzzzzzz", age_s=100)  # oldest mtime
    others = [folder(f"serving_dbt_assets-run{i:04d}-u{i:06d}", age_s=50 + i) for i in range(7)]
    other_op = folder("crimecast_dbt_assets_v2-run0000-u000000", age_s=99)

    removed = prune_targets(current)
    assert sorted(removed) == sorted(mine[KEEP_TARGETS:])
    assert all(p.exists() for p in mine[:KEEP_TARGETS] + [current, other_op] + others)
    assert not any(p.exists() for p in removed)


def test_raw_incidents_freshness_is_one_rule_for_dagster_and_dbt() -> None:
    """The load-freshness windows live in dbt_project.yml (vars): the Dagster FreshnessPolicy of
    raw/incidents (per city) and dbt's source freshness of raw.incidents read the same hours."""
    import json
    from datetime import timedelta

    from ml.project import dbt_project_var
    from orchestration.defs.dbt import dbt_project
    from orchestration.defs.incidents.raw import RAW_INCIDENTS, raw_incidents

    warn, error = (int(dbt_project_var(f"load_{k}_after_hours")) for k in ("warn", "error"))
    assert 0 < warn < error
    policy = raw_incidents.specs_by_key[RAW_INCIDENTS].freshness_policy
    assert policy.warn_window.to_timedelta() == timedelta(hours=warn)
    assert policy.fail_window.to_timedelta() == timedelta(hours=error)
    manifest = json.loads(dbt_project.manifest_path.read_text())
    source = manifest["sources"]["source.crimecast.raw.incidents"]
    assert source["loaded_at_field"] == "loaded_at"
    assert source["freshness"]["warn_after"] == {"count": warn, "period": "hour"}
    assert source["freshness"]["error_after"] == {"count": error, "period": "hour"}
