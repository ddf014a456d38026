"""The serving contract as Dagster assets: the second dbt selection (models tagged ``serving``,
dbt_project/models/serving/), built after the ML assets.

Its models read ``source('ml', ...)``; the translator maps those sources to the ML assets' keys
(``["ml", <table>]``), so Dagster runs this selection once every ML table it reads is written.
The first selection (orchestration/defs/dbt.py) excludes the tag. Asset keys are
``["serving", <table>]`` (the model's alias: the table readers query), group ``serving``.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets
from dagster_dbt.errors import DagsterDbtCliRuntimeError

from orchestration.defs import dbt as dbt_defs
from orchestration.defs.dbt import dbt_failure_line, dbt_project
from orchestration.defs.incidents.raw import failure
from orchestration.resources import WarehouseResource

#: the dbt selection of the serving models (and their tests)
SERVING_SELECT = "tag:serving"


class ServingTranslator(DagsterDbtTranslator):
    """Serving models keyed by the table they build (``serving/forecasts_latest``); sources and
    the refs to marts keep the default keys, i.e. those of the ML and marts assets."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "model" and "serving" in dbt_resource_props.get(
            "tags", []
        ):
            return dg.AssetKey(["serving", dbt_resource_props["alias"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "serving"


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=SERVING_SELECT,
    name="serving_dbt_assets",
    dagster_dbt_translator=ServingTranslator(),
    pool="warehouse_writer",
)
def serving_dbt_assets(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
):
    # another process holding the file: wait for it briefly, else fail with who holds it
    with warehouse.connect():
        pass
    # the same warehouse path and dbt guard as the first selection
    args = ["build", "--exclude-resource-type", "unit_test", *dbt_defs.dbt_vars_args(warehouse)]
    invocation = dbt.cli([*dbt_defs.guard_args(dbt), *args], context=context)
    try:
        yield from invocation.stream()
    except DagsterDbtCliRuntimeError as exc:
        raise failure(context, dbt_failure_line(invocation, exc), exc) from exc
    finally:
        dbt_defs.finish(invocation)
