"""The one Dagster Definitions object: raw → dbt → ml, a refresh job and a daily schedule."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.config import (
    DATASETS,
    DBT_PROJECT_DIR,
    DEFAULT_WAREHOUSE,
    SettingsError,
    env_inputs,
)
from orchestration.defs.dbt import crimecast_dbt_assets, dbt_project
from orchestration.defs.france.assets import (
    RAW_FRANCE_DEPARTMENTAL,
    RAW_FRANCE_REGIONAL,
    france_assets,
)
from orchestration.defs.incidents.checks import forecast_check_defs
from orchestration.defs.incidents.ml import ml_forecasts
from orchestration.defs.incidents.raw import (
    RAW_INCIDENT_KEYS,
    RAW_INCIDENTS,
    RAW_SOURCE_FILES,
    RAW_SOURCES,
    SourceSelection,
    env_selection,
    raw_incidents,
)
from orchestration.defs.incidents.sensors import CITY_JOB, new_incident_files
from orchestration.defs.saopaulo.assets import RAW_SAOPAULO, saopaulo_assets
from orchestration.defs.serving.dbt_serving import serving_dbt_assets
from orchestration.defs.serving.publish import PUBLISHED, RAW_CHECKS, publish_assets
from orchestration.defs.serving.site import dashboards_site, serving_assets, skip_requested
from orchestration.resources import MLTablesResource, RunDefaults, WarehouseResource

ALL_ASSETS = [
    raw_incidents,
    crimecast_dbt_assets,
    ml_forecasts,
    *forecast_check_defs,
    *france_assets,
    *saopaulo_assets,
    serving_dbt_assets,
    *publish_assets,
]

#: the raw assets of each source branch; a branch is its raw assets and everything downstream
#: of them up to (not including) the published copy
BRANCHES = {
    "incidents": (RAW_INCIDENTS, RAW_SOURCE_FILES, RAW_SOURCES),
    "france": (RAW_FRANCE_REGIONAL, RAW_FRANCE_DEPARTMENTAL),
    "saopaulo": (RAW_SAOPAULO,),
}


def refresh_selection(selection: SourceSelection) -> dg.AssetSelection:
    """The assets (and their checks) a refresh of ``selection`` runs: every branch it names,
    the seeds and the published copy; the branches of the other sources are left out, so their
    raw tables, marts and ml tables stay as they are."""
    out = dg.AssetSelection.all() - dg.AssetSelection.assets(dashboards_site)
    # the serving models read every branch: rebuilt on any refresh, like the copy
    shared = dg.AssetSelection.assets(PUBLISHED).downstream() | dg.AssetSelection.assets(
        serving_dbt_assets
    )
    wanted = {
        "incidents": selection.incidents != [],
        "france": "france" in selection.datasets,
        "saopaulo": "saopaulo" in selection.datasets,
    }
    for branch, keys in BRANCHES.items():
        if not wanted[branch]:
            out = out - (dg.AssetSelection.assets(*keys).downstream() - shared)
    return out


def refresh_job(selection: SourceSelection | None = None) -> dg.UnresolvedAssetJobDefinition:
    """The refresh_all job for ``selection`` (default: CRIMECAST_SOURCES now). Its raw
    incident assets are partitioned by city: a run is for one city (``partition_key``)."""
    selection = selection or env_selection()
    return dg.define_asset_job(
        "refresh_all",
        selection=refresh_selection(selection),
        description="Load the selected sources (CRIMECAST_SOURCES; unset: all), build their dbt "
        "marts, backtest and forecast, publish the copy; one run per city (partition). This "
        f"job: {selection.describe()}.",
    )


#: every raw asset: what the load runs of `crimecast run` materialize (the build run starts
#: below them)
RAW_KEYS = tuple(key for keys in BRANCHES.values() for key in keys)
LOAD_CITY_JOB = "load_city"
LOAD_DATASETS_JOB = "load_datasets"
BUILD_JOB = "build_and_publish"


@dataclass(frozen=True)
class PlannedRun:
    """One run of `crimecast run`: ``job`` (a job of :func:`build_defs`), the city partition
    it loads (None: no partition) and the label of its rows in the stage table."""

    job: str
    label: str
    partition: str | None = None


def run_plan(selection: SourceSelection) -> list[PlannedRun]:
    """The runs of a refresh of ``selection``, one after another: the raw load of each city in
    its own run (its partition; a bad file fails that city's load only), France's and São
    Paulo's raw loads in one run, then one run that builds every dbt model, forecasts and
    publishes from whatever each source's raw tables hold (a city whose load failed keeps its
    previous rows: its load rolled back). So dbt starts and the serving models build once."""
    cities = selection.cities()
    runs = [PlannedRun(LOAD_CITY_JOB, city, city) for city in cities]
    if selection.datasets:
        runs.append(PlannedRun(LOAD_DATASETS_JOB, ",".join(selection.datasets)))
    runs.append(PlannedRun(BUILD_JOB, "build"))
    return runs


def load_and_build_jobs(selection: SourceSelection) -> list[dg.UnresolvedAssetJobDefinition]:
    """The jobs of :func:`run_plan`: load_city (one city's raw partition and its checks),
    load_datasets (France's and São Paulo's raw tables, when selected) and build_and_publish
    (everything of ``selection`` below the raw tables)."""
    # the raw assets and crimecast's own raw checks; the dbt tests on dbt sources are checks of
    # the raw assets too, but dbt runs them: they belong to the build run
    raw = dg.AssetSelection.assets(*RAW_KEYS).without_checks()
    raw_checks = dg.AssetSelection.checks(*RAW_CHECKS)
    jobs = [
        dg.define_asset_job(
            LOAD_CITY_JOB,
            selection=dg.AssetSelection.assets(*RAW_INCIDENT_KEYS).without_checks() | raw_checks,
            description="Load one city's incident files (its partition) and check them.",
        ),
        dg.define_asset_job(
            BUILD_JOB,
            selection=refresh_selection(selection) - raw - raw_checks,
            description="Build the dbt marts and serving models, backtest and forecast, publish "
            "the copy, from the raw tables as loaded (crimecast run's last run). This job: "
            f"{selection.describe()}.",
        ),
    ]
    if selection.datasets:
        jobs.append(
            dg.define_asset_job(
                LOAD_DATASETS_JOB,
                selection=refresh_selection(SourceSelection([], selection.datasets)) & raw,
                description="Load the raw tables of France and São Paulo (their own loaders).",
            )
        )
    return jobs


refresh_all = refresh_job(SourceSelection(None, ("france", "saopaulo")))


def city_job(selection: SourceSelection | None = None) -> dg.UnresolvedAssetJobDefinition:
    """refresh_city: one city's branch (its raw partition → dbt → its forecasts → published
    copy), what the new-files sensor starts."""
    selection = selection or env_selection()
    return dg.define_asset_job(
        CITY_JOB,
        selection=refresh_selection(SourceSelection(selection.incidents, ())),
        description="Load one city (its partition), build the incident marts, forecast that city "
        "and publish the copy (started by the new_incident_files sensor).",
    )


refresh_dashboards = dg.define_asset_job(
    "refresh_dashboards",
    selection=dg.AssetSelection.assets(dashboards_site),
    description="Publish a read-only copy of the warehouse and rebuild the Evidence site "
    "(needs Node.js and npm).",
)


def branch_runs(selection: SourceSelection) -> list[tuple[SourceSelection, str | None]]:
    """The runs of the daily schedule: one per incident source (its partition: raw → dbt → its
    forecasts → published copy), then France and São Paulo together. A schedule cannot wait
    for one run before it starts the next, so each run is a whole branch (unlike
    :func:`run_plan`, which loads every source before one build)."""
    cities = selection.cities()
    runs: list[tuple[SourceSelection, str | None]] = [
        (SourceSelection([city], ()), city) for city in cities
    ]
    if selection.datasets:
        runs.append((SourceSelection([], selection.datasets), None))
    return runs


def run_requests(
    context, plan: list[tuple[SourceSelection, str | None]], key: str
) -> list[dg.RunRequest]:
    """RunRequests of refresh_all for ``plan`` (see :func:`branch_runs`): each run only the
    assets of its branch, each city on its partition."""
    graph = context.repository_def.asset_graph
    return [
        dg.RunRequest(
            run_key=f"{key}:{city or 'france_saopaulo'}",
            partition_key=city,
            asset_selection=sorted(refresh_selection(sel).resolve(graph), key=str),
            tags={"crimecast/source": city or ",".join(sel.datasets)},
        )
        for sel, city in plan
    ]


def daily_schedule(job, selection: SourceSelection | None = None) -> dg.ScheduleDefinition:
    """Every day: one run per city (its partition), then France and São Paulo (the sources of
    ``selection``, default CRIMECAST_SOURCES when the schedule ticks)."""

    @dg.schedule(
        name="daily_refresh",
        job=job,
        cron_schedule="0 6 * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    def daily_refresh(context: dg.ScheduleEvaluationContext):
        day = context.scheduled_execution_time.date().isoformat()
        return run_requests(context, branch_runs(selection or env_selection()), day)

    return daily_refresh


daily_refresh = daily_schedule(refresh_all)


#: The guard's own argument: the PID of the process that started dbt (orchestration.defs.dbt
#: passes it), removed before dbt starts.
GUARD_PARENT_FLAG = "--crimecast-parent"

#: Started instead of dbt: makes dbt die with the process that started it (Linux
#: PR_SET_PDEATHSIG), so that a killed `crimecast run` (SIGKILL or SIGTERM) does not leave dbt
#: running, holding the warehouse lock; it keeps the same process group (Ctrl-C reaches it).
_GUARD = """#!{python}
# generated by orchestration/definitions.py: dbt dies with the process that started it
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass  # not Linux: no guard
flag = {flag!r} + "="
parent = [a[len(flag):] for a in sys.argv[1:] if a.startswith(flag)]
if parent and parent[0].isdigit() and os.getppid() != int(parent[0]):
    sys.exit("crimecast: the process that started dbt has exited")
args = [a for a in sys.argv[1:] if not a.startswith(flag)]
os.execv({dbt!r}, [{dbt!r}, *args])
"""


def guarded_dbt(dbt: str, folder: Path = DBT_PROJECT_DIR / "target") -> str:
    """An executable that runs ``dbt`` under the guard above (written once per dbt path and
    interpreter); ``dbt`` itself where the folder cannot hold it."""
    real = shutil.which(dbt) or dbt
    text = _GUARD.format(python=sys.executable, dbt=real, flag=GUARD_PARENT_FLAG)
    path = folder / f"crimecast-dbt-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    if path.exists():
        return str(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.chmod(0o755)
        os.replace(tmp, path)
    except OSError:
        return real
    return str(path)


def _dbt_executable() -> str:
    """The dbt of this virtualenv, even when the venv is not activated (``dagster dev`` may
    start its code server through the resolved base interpreter, so look in ``sys.prefix``)."""
    for folder in (Path(sys.executable).parent, Path(sys.prefix) / "bin"):
        if (folder / "dbt").exists():
            return str(folder / "dbt")
    return shutil.which("dbt") or "dbt"


def lock_timeout_s() -> float:
    """CRIMECAST_LOCK_TIMEOUT_S: how long a step waits for another process to release the
    warehouse file (default 10 s)."""
    text = os.environ.get("CRIMECAST_LOCK_TIMEOUT_S", "").strip()
    try:
        return max(0.0, float(text)) if text else 10.0
    except ValueError:
        raise SettingsError("CRIMECAST_LOCK_TIMEOUT_S", text, "not a number of seconds") from None


def _env_or(name: str, default: str) -> str | dg.EnvVar:
    """``dg.EnvVar(name)`` when the variable is set (resolved when a run starts, shown as
    such in the UI), else ``default``."""
    return dg.EnvVar(name) if os.environ.get(name, "").strip() else default


def build_resources(warehouse: str | Path | None = None) -> dict:
    """The resources: the warehouse (``warehouse``, else CRIMECAST_WAREHOUSE, else
    warehouse/crimecast.duckdb), the ML's tables on it (or on Spark: CRIMECAST_ML_ENGINE), dbt,
    and the run defaults of the environment now."""
    warehouse_resource = WarehouseResource(
        database=(
            str(warehouse) if warehouse else _env_or("CRIMECAST_WAREHOUSE", str(DEFAULT_WAREHOUSE))
        ),
        lock_timeout_s=lock_timeout_s(),
        published=_env_or("CRIMECAST_PUBLISHED", ""),
    )
    return {
        "warehouse": warehouse_resource,
        "ml_tables": MLTablesResource(
            warehouse=warehouse_resource, engine=_env_or("CRIMECAST_ML_ENGINE", "duckdb")
        ),
        "run_defaults": run_defaults(),
        "dbt": DbtCliResource(
            project_dir=dbt_project, dbt_executable=guarded_dbt(_dbt_executable())
        ),
    }


def run_defaults() -> RunDefaults:
    """The run settings of the environment now (CRIMECAST_SOURCES, CRIMECAST_INPUT_<NAME>,
    CRIMECAST_FRANCE_MODELS, CRIMECAST_SKIP_DASHBOARDS); an unknown source raises a one-line
    SettingsError."""
    selection = env_selection()
    names = [*(selection.incidents or []), *selection.datasets]
    everything = selection.incidents is None and selection.datasets == DATASETS
    return RunDefaults(
        sources=[] if everything else names,
        inputs=env_inputs(),
        france_models=os.environ.get("CRIMECAST_FRANCE_MODELS", "").strip(),
        skip_dashboards=skip_requested(),
    )


def build_defs(
    warehouse: str | Path | None = None, selection: SourceSelection | None = None
) -> dg.Definitions:
    """The Definitions with resources for ``warehouse`` and a refresh_all job for
    ``selection`` (defaults: the settings now; an unknown name in CRIMECAST_SOURCES raises a
    one-line SettingsError)."""
    job = refresh_job(selection)
    return dg.Definitions(
        assets=[*ALL_ASSETS, *serving_assets],
        jobs=[
            job,
            city_job(selection),
            *load_and_build_jobs(selection or env_selection()),
            refresh_dashboards,
        ],
        sensors=[new_incident_files],
        schedules=[daily_schedule(job, selection)],
        resources=build_resources(warehouse),
        # DuckDB allows one writer: steps run one after another in one process.
        executor=dg.in_process_executor,
    )


defs = build_defs()
