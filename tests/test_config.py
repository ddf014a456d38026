"""Settings travel as resources and run config, never through this process's environment:
the warehouse path is the resource's (dagster-duckdb, `dg.EnvVar`) for the Python assets and
for dbt, the run defaults are read when the resources are built, and no code writes
`os.environ`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from test_ml_asset import _mart, _warehouse, ml_resources

from orchestration.resources import WarehouseResource

REPO = Path(__file__).resolve().parents[1]


def test_warehouse_resource_is_dagster_duckdb_configured_from_the_environment(
    tmp_path, monkeypatch
) -> None:
    from dagster_duckdb import DuckDBResource

    from orchestration.definitions import build_resources

    target = tmp_path / "w" / "crimecast.duckdb"
    monkeypatch.setenv("CRIMECAST_WAREHOUSE", str(target))
    resource = build_resources()["warehouse"]
    assert isinstance(resource, DuckDBResource)
    assert isinstance(resource.database, dg.EnvVar)  # resolved when a run starts, shown so

    seen = {}

    @dg.asset
    def probe(warehouse: WarehouseResource) -> None:
        seen["path"] = warehouse.path
        with warehouse.get_connection() as con:
            con.execute("create table t as select 1 as x")
        with warehouse.connect(read_only=True) as con:
            seen["x"] = con.execute("select x from t").fetchone()[0]

    assert dg.materialize([probe], resources={"warehouse": resource}).success
    assert seen == {"path": target, "x": 1}
    # a relative path is from the repo root, as before
    assert WarehouseResource(database="warehouse/x.duckdb").path == REPO / "warehouse/x.duckdb"


def test_ml_asset_reads_the_resource_warehouse_not_the_environment(tmp_path, monkeypatch) -> None:
    """CRIMECAST_WAREHOUSE names another existing warehouse: the ML asset reads and writes the
    resource's file only (a short history: the source is skipped, no model is fitted)."""
    from orchestration.defs.incidents.ml import ml_forecasts

    mine, other = tmp_path / "mine.duckdb", tmp_path / "other.duckdb"
    _warehouse(mine, _mart(40))
    _warehouse(other, _mart(40).assign(source="elsewhere"))
    con = duckdb.connect(str(other))
    con.execute("update raw.sources set source = 'elsewhere'")
    con.close()
    monkeypatch.setenv("CRIMECAST_WAREHOUSE", str(other))
    config = {"cutoff": "", "cutoffs": {}, "horizon": 28, "profile": "lean"}
    result = dg.materialize(
        [ml_forecasts],
        resources=ml_resources(mine),
        run_config={"ops": {"ml_forecasts": {"config": config}}},
    )
    assert result.success
    con = duckdb.connect(str(mine), read_only=True)
    try:
        status = con.execute("select source, status from ml.source_status").fetchall()
    finally:
        con.close()
    assert status == [("town", "skipped")]
    con = duckdb.connect(str(other), read_only=True)
    try:
        schemas = {r[0] for r in con.execute("select schema_name from duckdb_schemas()").fetchall()}
    finally:
        con.close()
    assert "ml" not in schemas


class _Stop(Exception):
    pass


_CALLS: list[list[str]] = []


def test_an_unknown_ml_engine_fails_with_the_setting_named(tmp_path) -> None:
    from orchestration.resources import MLTablesResource

    warehouse = WarehouseResource(database=str(tmp_path / "w.duckdb"))
    tables = MLTablesResource(engine="sparkle", warehouse=warehouse)
    match = r"engine 'sparkle' is not one of duckdb, spark \(CRIMECAST_ML_ENGINE\)"
    with pytest.raises(dg.Failure, match=match), tables.open():
        pass
    # the default engine is DuckDB, on the resource's file
    with MLTablesResource(warehouse=warehouse).open(write=True) as duck:
        assert duck.read("select 1 as x")["x"].tolist() == [1]
    assert (tmp_path / "w.duckdb").exists()


def test_dbt_asset_passes_the_resource_warehouse_to_dbt(tmp_path, monkeypatch) -> None:
    """The dbt step gives dbt the resource's path as a var (profiles.yml reads it before
    CRIMECAST_WAREHOUSE), and dbt connects to that file."""
    from dagster_dbt import DbtCliResource

    from orchestration.definitions import build_resources
    from orchestration.defs.dbt import crimecast_dbt_assets, dbt_vars_args

    mine, other = tmp_path / "mine.duckdb", tmp_path / "other.duckdb"
    monkeypatch.setenv("CRIMECAST_WAREHOUSE", str(other))
    warehouse = WarehouseResource(database=str(mine))
    real = build_resources(mine)["dbt"]

    class Recording(DbtCliResource):
        def cli(self, args, **kwargs):
            _CALLS.append(list(args))
            raise _Stop("recorded")

    spy = Recording(project_dir=real.project_dir, dbt_executable=real.dbt_executable)
    result = dg.materialize(
        [crimecast_dbt_assets],
        resources={"warehouse": warehouse, "dbt": spy},
        raise_on_error=False,
    )
    assert not result.success and _CALLS
    args = _CALLS[-1]
    assert args[args.index("--vars") :][:2] == dbt_vars_args(warehouse)
    assert str(mine) in args[args.index("--vars") + 1]

    # and dbt itself connects to that file (dbt debug creates it), not the environment's
    fresh = WarehouseResource(database=str(tmp_path / "fresh.duckdb"))
    invocation = real.cli(
        ["debug", *dbt_vars_args(fresh)], target_path=tmp_path / "target", raise_on_error=False
    ).wait()
    assert invocation.is_successful(), invocation.get_error()
    assert fresh.path.exists() and not other.exists()


def test_run_defaults_are_read_when_the_resources_are_built(monkeypatch) -> None:
    from orchestration.config import SettingsError
    from orchestration.definitions import run_defaults

    monkeypatch.setenv("CRIMECAST_SOURCES", "houston,france")
    monkeypatch.setenv("CRIMECAST_INPUT_HOUSTON", " data/h.csv ")
    monkeypatch.setenv("CRIMECAST_INPUT_FRANCE_REGIONAL", "reg.csv")
    monkeypatch.setenv("CRIMECAST_FRANCE_MODELS", "drift,holt")
    monkeypatch.setenv("CRIMECAST_SKIP_DASHBOARDS", "1")
    built = run_defaults()
    monkeypatch.setenv("CRIMECAST_INPUT_HOUSTON", "changed.csv")  # after: no effect
    assert built.sources == ["houston", "france"]
    assert built.input_for("houston") == "data/h.csv"
    assert built.input_for("france_regional") == "reg.csv"
    assert built.input_for("boston") is None
    assert built.france_models == "drift,holt"
    assert built.skip_dashboards is True
    monkeypatch.delenv("CRIMECAST_SOURCES")
    assert run_defaults().sources == []  # unset: everything
    monkeypatch.setenv("CRIMECAST_SOURCES", "nowhere")
    with pytest.raises(SettingsError, match="unknown source 'nowhere'"):
        run_defaults()


def test_site_asset_reads_skip_from_its_resource(tmp_path, monkeypatch) -> None:
    """CRIMECAST_SKIP_DASHBOARDS is read when the resources are built, not in the asset."""
    from orchestration.defs.serving.site import dashboards_site
    from orchestration.resources import RunDefaults

    monkeypatch.delenv("CRIMECAST_SKIP_DASHBOARDS", raising=False)
    result = dg.materialize(
        [dashboards_site],
        resources={
            "warehouse": WarehouseResource(database=str(tmp_path / "w.duckdb")),
            "run_defaults": RunDefaults(skip_dashboards=True),
        },
    )
    (event,) = result.get_asset_materialization_events()
    assert event.materialization.metadata["skipped"].value is True


def test_france_model_list_default_lives_in_ml() -> None:
    from ml.annual import LEAN_MODELS, candidate_grid, model_list

    assert model_list("") == list(LEAN_MODELS)
    assert model_list("all") is None
    assert model_list(" drift, holt ") == ["drift", "holt"]
    assert set(LEAN_MODELS) <= set(candidate_grid())


#: writes to the process environment (a test may use monkeypatch.setenv)
_WRITES = re.compile(
    r"os\.environ\[[^\]]+\]\s*=(?!=)|environ\.(setdefault|update|pop|clear)\(|putenv\(|"
    r"unsetenv\(|del\s+os\.environ"
)


def test_no_code_writes_the_environment() -> None:
    found = []
    for folder in ("orchestration", "ingest", "ml", "samples", "serving", "bench"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if _WRITES.search(line):
                    found.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert found == []


def test_crimecast_run_opens_dagster_home_without_setting_it(tmp_path, monkeypatch) -> None:
    """DAGSTER_HOME unset: `crimecast run` opens the default home's instance explicitly and
    leaves the environment as it was."""
    import os

    from orchestration import cli

    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setattr(cli, "REPO_ROOT", tmp_path)
    instance = cli._instance()
    try:
        assert Path(instance.root_directory) == tmp_path / "warehouse" / "dagster_home"
        assert instance.telemetry_enabled is False  # crimecast's dagster.yaml was installed
    finally:
        instance.dispose()
    assert "DAGSTER_HOME" not in os.environ


def test_the_manifest_is_parsed_with_the_vars_of_the_dbt_steps(tmp_path: Path) -> None:
    """`make manifest` parses with the vars the dbt steps pass on the environment's warehouse:
    dbt reuses that parse only under the same vars, else every build parses in full. Checked in
    a fresh process, as `make manifest` runs (the parse's arguments are fixed at import)."""
    script = (
        "import dagster as dg\n"
        "from orchestration.definitions import build_resources\n"
        "from orchestration.defs.dbt import dbt_project, dbt_vars_args\n"
        "parse = dbt_project.preparer._prepare_project_cli_args\n"
        "assert parse[:1] == ['parse'], parse\n"
        # the warehouse resource as a run resolves it (its EnvVar read then)
        "with dg.build_resources({'w': build_resources()['warehouse']}) as res:\n"
        "    expected = dbt_vars_args(res.w)\n"
        "assert parse[parse.index('--vars'):][:2] == expected, (parse, expected)\n"
        "print(expected[1])\n"
    )
    warehouse = tmp_path / "elsewhere" / "crimecast.duckdb"
    env = {**os.environ, "CRIMECAST_WAREHOUSE": str(warehouse)}
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert str(warehouse) in proc.stdout
