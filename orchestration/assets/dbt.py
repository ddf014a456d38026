"""dbt models, seeds and tests as Dagster assets (dbt tests become asset checks)."""

import os
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

from orchestration.config import REPO_ROOT, export_for_dbt
from orchestration.resources import WarehouseResource

export_for_dbt()

dbt_project = DbtProject(project_dir=REPO_ROOT, profiles_dir=REPO_ROOT)
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
    dagster_dbt_translator=CrimecastTranslator(
        settings=DagsterDbtTranslatorSettings(enable_source_tests_as_checks=True)
    ),
    pool="warehouse_writer",
)
def crimecast_dbt_assets(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
):
    # dbt (profiles.yml) reads the warehouse path from the environment: give it the resource's,
    # so that dbt and the Python assets always work on the same file
    os.environ["CRIMECAST_WAREHOUSE"] = str(Path(warehouse.path).resolve())
    # dbt unit tests check the SQL against fixed inputs: they run in `make test` (the dbt builds
    # of tests/test_reliability_incremental.py and tests/test_france_annual.py), not on every
    # pipeline run, as dbt recommends for production builds.
    yield from dbt.cli(["build", "--exclude-resource-type", "unit_test"], context=context).stream()
