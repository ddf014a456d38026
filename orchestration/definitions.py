"""The one Dagster Definitions object: raw → dbt → ml, a refresh job and a daily schedule."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.assets.dbt import crimecast_dbt_assets, dbt_project
from orchestration.assets.france import france_assets
from orchestration.assets.ml import ml_forecasts
from orchestration.assets.publish import publish_assets
from orchestration.assets.raw import raw_incidents
from orchestration.assets.saopaulo import saopaulo_assets
from orchestration.assets.serving import dashboards_site, serving_assets
from orchestration.config import settings
from orchestration.resources import WarehouseResource

ALL_ASSETS = [
    raw_incidents,
    crimecast_dbt_assets,
    ml_forecasts,
    *france_assets,
    *saopaulo_assets,
    *publish_assets,
]

refresh_all = dg.define_asset_job(
    "refresh_all",
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(dashboards_site),
    description="Load every configured source, build the dbt marts, backtest and forecast.",
)

refresh_dashboards = dg.define_asset_job(
    "refresh_dashboards",
    selection=dg.AssetSelection.assets(dashboards_site),
    description="Publish a read-only copy of the warehouse and rebuild the Evidence site "
    "(needs Node.js and npm).",
)

daily_refresh = dg.ScheduleDefinition(
    name="daily_refresh",
    job=refresh_all,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)


def _dbt_executable() -> str:
    """The dbt of this virtualenv, even when the venv is not activated (``dagster dev`` may
    start its code server through the resolved base interpreter, so look in ``sys.prefix``)."""
    for folder in (Path(sys.executable).parent, Path(sys.prefix) / "bin"):
        if (folder / "dbt").exists():
            return str(folder / "dbt")
    return shutil.which("dbt") or "dbt"


def build_resources(warehouse: str | Path | None = None) -> dict:
    return {
        "warehouse": WarehouseResource(path=str(warehouse or settings().warehouse)),
        "dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=_dbt_executable()),
    }


def build_defs(warehouse: str | Path | None = None) -> dg.Definitions:
    """The Definitions with resources for ``warehouse`` (default: the settings now)."""
    return dg.Definitions(
        assets=[*ALL_ASSETS, *serving_assets],
        jobs=[refresh_all, refresh_dashboards],
        schedules=[daily_refresh],
        resources=build_resources(warehouse),
        # DuckDB allows one writer: steps run one after another in one process.
        executor=dg.in_process_executor,
    )


defs = build_defs()
