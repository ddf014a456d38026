"""Build the dbt serving models (dbt_project/models/serving/, tag ``serving``) on a test
warehouse, as the pipeline's second dbt selection does before the copy is published."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DBT_DIR = REPO / "dbt_project"


def serving_target() -> Path:
    """One dbt target folder per test process: partial parsing makes the builds after the first
    fast, and parallel test processes do not share it."""
    return Path(tempfile.gettempdir()) / f"crimecast-serving-{os.getuid()}-{os.getpid()}"


def build_serving(
    warehouse: Path,
    *,
    select: str = "tag:serving",
    project_dir: Path = DBT_DIR,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """``dbt build --select tag:serving`` on ``warehouse`` (its path through ``--vars``, as
    the Dagster asset passes it). ``check``: fail the test, with dbt's output, if dbt fails."""
    target = serving_target() if project_dir == DBT_DIR else project_dir / "target"
    command = [str(REPO / ".venv" / "bin" / "dbt"), "build", "--select", select]
    command += ["--project-dir", str(project_dir), "--profiles-dir", str(project_dir)]
    command += ["--target-path", str(target), "--log-path", str(target / "logs")]
    command += ["--vars", json.dumps({"warehouse_path": str(Path(warehouse).resolve())})]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1800)
    if check:
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return proc
