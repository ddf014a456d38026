"""dbt models, seeds and tests as Dagster assets (dbt tests become asset checks)."""

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)
from dagster_dbt.errors import DagsterDbtCliRuntimeError

from ingest.loader import mark_built, rebuild_window
from orchestration.config import DBT_PROJECT_DIR, DEFAULT_WAREHOUSE
from orchestration.defs.incidents.raw import failure
from orchestration.resources import WarehouseResource


def dbt_vars(warehouse: WarehouseResource, **extra: Any) -> dict[str, Any]:
    """The dbt vars of a build on ``warehouse``: its absolute path (profiles.yml), then
    ``extra`` (e.g. a source filter)."""
    return {"warehouse_path": str(warehouse.path), **extra}


def dbt_vars_args(warehouse: WarehouseResource, **extra: Any) -> list[str]:
    """``--vars`` for :func:`dbt_vars` (dbt takes one ``--vars``: pass every var here)."""
    return ["--vars", json.dumps(dbt_vars(warehouse, **extra))]


#: the warehouse of this environment (CRIMECAST_WAREHOUSE, else warehouse/crimecast.duckdb)
DEFAULT_RESOURCE = WarehouseResource(
    database=os.environ.get("CRIMECAST_WAREHOUSE") or str(DEFAULT_WAREHOUSE)
)
# The manifest is parsed (`make manifest`: `dagster-dbt project prepare-and-package`) with the
# vars the dbt steps pass on this environment's warehouse: dbt reuses a parse (the
# partial_parse.msgpack dagster-dbt copies into each invocation) only under the same vars and
# profile, so the builds of `crimecast run` skip a full parse of the project (about 6 s of CPU
# per dbt step, two per run). A build on another warehouse still works, parsing in full.
dbt_project = DbtProject(
    project_dir=DBT_PROJECT_DIR,
    profiles_dir=DBT_PROJECT_DIR,
    prepare_project_cli_args=["parse", "--quiet", *dbt_vars_args(DEFAULT_RESOURCE)],
)
if not dbt_project.manifest_path.exists():
    # `make manifest` normally does this; parse here so a fresh checkout still loads.
    dbt_project.preparer.prepare(dbt_project)
else:
    dbt_project.prepare_if_dev()


class CrimecastTranslator(DagsterDbtTranslator):
    """Groups follow the dbt layer: seeds, staging, intermediate, marts."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "seeds"
        fqn = dbt_resource_props.get("fqn", [])
        for layer in ("staging", "intermediate", "marts"):
            if layer in fqn:
                return layer
        return "dbt"


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    # the serving models run after the ML assets: orchestration/defs/serving/dbt_serving.py
    exclude="tag:serving",
    dagster_dbt_translator=CrimecastTranslator(
        settings=DagsterDbtTranslatorSettings(enable_source_tests_as_checks=True)
    ),
    pool="warehouse_writer",
)
def crimecast_dbt_assets(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
):
    # dbt works on the resource's file: profiles.yml reads the `warehouse_path` var (nothing
    # is written into this process's environment). The guard (orchestration/definitions.py)
    # exits if this process is already gone when dbt starts. Which tests run with a subset of
    # the models (some sources) is dbt_project.yml's `indirect_selection: cautious` flag.
    # Another process holding the file: wait for it briefly, else fail with who holds it
    # (dbt's own message for that is a page of adapter output).
    # The incremental models rebuild the days the loads since the last complete build changed:
    # dbt reads them from raw.load_log (written by the loader), this step marks them built
    # (dbt_project/macros/incremental_window.sql); a load that emptied a day: a full refresh.
    with warehouse.connect() as con:
        window = rebuild_window(con)
    # dbt unit tests check the SQL against fixed inputs: they run in `make test` (the dbt builds
    # of tests/test_reliability_incremental.py and tests/test_france_annual.py), not on every
    # pipeline run, as dbt recommends for production builds.
    args = ["build", "--exclude-resource-type", "unit_test", *window.dbt_args()]
    args += dbt_vars_args(warehouse)
    invocation = dbt.cli([*guard_args(dbt), *args], context=context)
    try:
        yield from invocation.stream()
    except DagsterDbtCliRuntimeError as exc:
        raise failure(context, dbt_failure_line(invocation, exc), exc) from exc
    finally:
        finish(invocation)
    if not context.is_subset:  # a subset leaves models behind: the window stays for them
        with warehouse.connect() as con:
            mark_built(con, window)


def guard_args(dbt: DbtCliResource) -> list[str]:
    """The parent process for dbt's guard (orchestration/definitions.py), which removes this
    argument before starting dbt; none when dbt is started directly."""
    from orchestration.definitions import GUARD_PARENT_FLAG

    if Path(dbt.dbt_executable).name.startswith("crimecast-dbt-"):
        return [f"{GUARD_PARENT_FLAG}={os.getpid()}"]
    return []


#: how many of its dbt target folders each dbt step keeps (the newest; run_results.json of a
#: recent failure stays readable)
KEEP_TARGETS = 5


def prune_targets(target_path: Path, keep: int = KEEP_TARGETS) -> list[Path]:
    """Remove all but the ``keep`` newest target folders of the step that wrote ``target_path``.
    dagster-dbt gives every invocation its own folder (``<op>-<run id>-<uuid>``, about 7 MB:
    manifest, run results, compiled SQL) and never removes one: a daily run would add 5 GB a
    year. Returns the removed folders."""
    op = target_path.name.rsplit("-", 2)[0]
    siblings = target_path.parent.glob(f"{op}-*-*")
    mine = [p for p in siblings if p.is_dir() and p.name.rsplit("-", 2)[0] == op]
    mine.sort(key=_mtime, reverse=True)
    removed = [p for p in mine[keep:] if p != target_path]
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return removed


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # removed meanwhile by another run's pruning
        return 0.0


def finish(invocation) -> None:
    """After a dbt step: end dbt if it still runs, and prune the step's old target folders."""
    stop(invocation.process)
    prune_targets(Path(invocation.target_path))


def stop(process: subprocess.Popen, timeout_s: float = 30) -> None:
    """End dbt if it still runs: an error while Dagster reads its events (not a dbt failure,
    which ends dbt) would leave it running, holding the warehouse for the next steps."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def dbt_failure_line(invocation, exc: Exception, shown: int = 3) -> str:
    """One line for a failed dbt build: the failed nodes with dbt's message (from
    run_results.json), else the first error dbt logged, and where dbt's full log is."""
    try:
        results = invocation.get_artifact("run_results.json").get("results", [])
    except Exception:  # dbt stopped before writing it (bad project, adapter error)
        results = []
    failed = []
    for r in results:
        if r.get("status") in ("error", "fail", "runtime error"):
            kind, *_rest, name = str(r.get("unique_id", "?")).split(".")
            message = " ".join(str(r.get("message") or r.get("status")).split())
            failed.append(f"{kind} {name}: {message[:300]}")
    if failed:
        more = f"; and {len(failed) - shown} more" if len(failed) > shown else ""
        what = f"{len(failed)} failed: " + "; ".join(failed[:shown]) + more
    else:
        text = str(getattr(exc, "description", None) or exc)
        parsed = text.split("Errors parsed from dbt logs:", 1)[-1]
        lines = [ln.strip() for ln in parsed.splitlines() if ln.strip()]
        what = (lines[0] if lines else f"exit code {invocation.process.returncode}")[:300]
    return f"dbt build: {what} (dbt log: {invocation.target_path / 'dbt.log'})"
