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
