"""The dbt project on Apache Spark (issue 16, docs/scale-out.md): the sample built with the
`spark` target (local Spark in dbt's process, raw.* and ml.* handed over as Parquet by
ingest/parquet.py) equals the DuckDB build row for row, and the dbt tests pass there.

Needs Java and the [spark] extra (`make test-spark` installs the extra; CI installs both).
"""

from __future__ import annotations

import datetime
import os
import shutil
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import DBT_PROJECT_DIR

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java (17)"),
]

#: columns of transcendental functions (sin, cos, ln): the engines' implementations may differ
#: in the last bit (seen: the France log growths, 1 ULP on some rows); every other column exact
ULP_COLUMNS = {"doy_sin", "doy_cos", "national_log_growth_lag_1", "parent_log_growth_lag_1"}


@pytest.fixture(scope="module")
def spark_build(sample_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The sample's sources exported and registered on Spark, then `dbt build --target spark`;
    the run's results, where Spark's tables live and the build's wall time."""
    pytest.importorskip("pyspark", reason="the [spark] extra is not installed")
    pytest.importorskip("dbt.adapters.spark", reason="the [spark] extra is not installed")
    from dbt.cli.main import dbtRunner

    from ingest.parquet import export_parquet, register_spark_tables

    folder = tmp_path_factory.mktemp("spark")
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("CRIMECAST_"):
                mp.delenv(name)
        mp.setenv("CRIMECAST_SPARK_DIR", str(folder / "spark"))
        mp.chdir(folder)  # Spark and Derby write their scratch files into the working folder
        names = export_parquet(sample_warehouse, folder / "sources")
        register_spark_tables(folder / "sources", names, project_dir=DBT_PROJECT_DIR)
        started = time.monotonic()
        result = dbtRunner().invoke(
            ["build", "--target", "spark", "--project-dir", str(DBT_PROJECT_DIR)]
            + ["--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(folder / "target")]
            + ["--log-path", str(folder / "logs")]
        )
        seconds = time.monotonic() - started
    assert result.exception is None, f"dbt build on Spark raised: {result.exception}"
    return {
        "results": result.result.results,
        "tables": folder / "spark" / "tables",
        "seconds": seconds,
    }


def test_dbt_build_passes_on_spark(spark_build: dict) -> None:
    """Every model, seed, data test and unit test of the project succeeds on Spark (a test of
    severity warn may warn: saopaulo_unmapped_place_types reports the sample's unmapped
    subtype on DuckDB too)."""
    kinds = ("model", "seed", "test", "unit_test")  # exposures are no-ops
    results = [r for r in spark_build["results"] if str(r.node.resource_type) in kinds]
    failed = [
        f"{r.node.unique_id}: {r.status} {(r.message or '')[:300]}"
        for r in results
        if str(r.status) not in ("success", "pass")
        and not (str(r.status) == "warn" and r.node.config.severity.lower() == "warn")
    ]
    assert not failed, "\n".join(failed)
    assert set(kinds) <= {str(r.node.resource_type) for r in results}
    print(f"spark dbt build: {len(results)} nodes in {spark_build['seconds']:.0f} s")


def _compared_models(results) -> list:
    """The marts and every serving `*_latest` model built in this run."""
    nodes = [r.node for r in results if str(r.node.resource_type) == "model"]
    return sorted(
        (
            n
            for n in nodes
            if "marts" in n.fqn or (n.schema == "serving" and n.name.endswith("_latest"))
        ),
        key=lambda n: n.name,
    )


def _normalised(frame: pd.DataFrame) -> pd.DataFrame:
    """Types made comparable across engines: timestamps as naive UTC instants, decimals and
    integers of any width as float64 (exact for these counts), text as str; rows sorted. An
    object column's kind is read from its first non-null value (the engines give one type per
    column), not from a Python pass over every row."""
    from decimal import Decimal

    out = pd.DataFrame(index=frame.index)
    for name in sorted(frame.columns):
        col = frame[name]
        if isinstance(col.dtype, pd.DatetimeTZDtype):
            col = col.dt.tz_convert("UTC").dt.tz_localize(None)
        first = col.dropna().iloc[0] if col.dtype == object and col.notna().any() else None
        if pd.api.types.is_datetime64_any_dtype(col):
            out[name] = col.astype("datetime64[us]")
        elif pd.api.types.is_bool_dtype(col):
            out[name] = col.astype("boolean")
        elif pd.api.types.is_numeric_dtype(col) or isinstance(first, Decimal):
            out[name] = pd.to_numeric(col, errors="raise").astype("float64")
        elif isinstance(first, datetime.date):  # Spark's dates
            out[name] = pd.to_datetime(col).astype("datetime64[us]")
        else:
            out[name] = col.map(lambda v: None if v is None or v is pd.NaT else v)
    return out.sort_values(list(out.columns), na_position="last").reset_index(drop=True)


def _differences(label: str, expected: pd.DataFrame, got: pd.DataFrame) -> list[str]:
    """Column by column, what differs between two frames of the same rows (any order): exact,
    but 1 ULP on the transcendental columns."""
    problems = []
    e, g = _normalised(expected), _normalised(got)
    for name in e.columns:
        a, b = e[name], g[name]
        if a.dtype == "float64" and b.dtype == "float64":
            x, y = a.to_numpy(), b.to_numpy()
            both_nan = np.isnan(x) & np.isnan(y)
            ulps = 1 if name in ULP_COLUMNS else 0
            tol = ulps * np.spacing(np.maximum(np.abs(x), np.abs(y)))
            bad = ~both_nan & ~(np.abs(x - y) <= tol)
        else:
            bad = ~((a == b).fillna(False) | (a.isna() & b.isna())).to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            problems.append(
                f"{label}.{name}: {int(bad.sum())} rows differ, e.g. "
                f"DuckDB {a.iloc[i]!r} Spark {b.iloc[i]!r}"
            )
    return problems


def test_marts_and_latest_serving_equal_duckdb(spark_build: dict, sample_warehouse: Path):
    """Each mart and `*_latest` serving model: the same columns and the same rows on Spark as
    in the DuckDB sample (1 ULP allowed on the sin/cos/ln columns)."""
    models = _compared_models(spark_build["results"])
    assert len(models) >= 8 + 13, [m.name for m in models]
    con = duckdb.connect(str(sample_warehouse), read_only=True)
    con.execute("set timezone = 'UTC'")
    problems: list[str] = []
    try:
        for node in models:
            table = node.alias or node.name
            expected = con.execute(f'select * from "{node.schema}"."{table}"').df()
            files = spark_build["tables"] / f"{node.schema}.db" / table
            got = (
                con.execute(
                    f"select * from read_parquet('{files}/*.parquet', union_by_name = true)"
                ).df()
                if any(files.glob("*.parquet"))
                else expected.iloc[0:0]
            )
            if sorted(expected.columns) != sorted(got.columns):
                problems.append(f"{node.name}: columns {sorted(got.columns)}")
                continue
            if len(expected) != len(got):
                problems.append(f"{node.name}: {len(got)} rows on Spark, {len(expected)} DuckDB")
                continue
            problems += _differences(node.name, expected, got)
    finally:
        con.close()
    assert not problems, "\n".join(problems)


def test_the_ml_reads_and_appends_its_tables_through_spark(spark_build: dict, sample_warehouse):
    """ml.tables.SparkTables on the Spark build: the daily ML's input (the ml_forecasts query)
    equals what DuckDBTables reads from the DuckDB sample; ML frames appended run after run read
    back with every vintage, a later run's new column added (NULL before it), an older run's
    missing column NULL, and a real ML table (ml.source_status) round-trips."""
    from pyspark.sql import SparkSession

    from ml.tables import DuckDBTables, SparkTables
    from orchestration.defs.incidents.ml import DAILY_INPUT

    spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
    tables = SparkTables(spark)
    con = duckdb.connect(str(sample_warehouse), read_only=True)
    try:
        duck = DuckDBTables(con)
        first = duck.read(
            "select min(date) as d from marts.daily_features where source = 'houston'"
        )
        args = ["houston", (first["d"][0] + pd.Timedelta(days=300)).date()]
        expected = duck.read(DAILY_INPUT, args)
        status = duck.read("ml.source_status")
    finally:
        con.close()
    got = tables.read(DAILY_INPUT, args)
    assert len(got) == len(expected) > 0 and list(got.columns) == list(expected.columns)
    assert not _differences("daily input", expected, got)

    schema = "ml_tables_test"
    day = datetime.date(2024, 1, 1)
    runs = [
        pd.DataFrame({"run_id": ["r1", "r1"], "source": ["a", "b"], "mae": [1.0, 2.0]}),
        pd.DataFrame({"run_id": ["r2"], "source": ["a"], "mae": [3.0], "as_of": [day]}),
        pd.DataFrame({"run_id": ["r3"], "source": ["b"]}),
    ]
    for run in runs:
        assert tables.append({"scores": run}, schema=schema) == {"scores": len(run)}
    back = tables.read(f"select * from {schema}.scores order by run_id, source")
    assert list(back.columns) == ["run_id", "source", "mae", "as_of"]
    assert list(back["run_id"]) == ["r1", "r1", "r2", "r3"]
    assert back["mae"].tolist()[:3] == [1.0, 2.0, 3.0] and pd.isna(back["mae"][3])
    # dates read back as DuckDBTables gives them (datetime64)
    assert (
        back["as_of"].tolist()[2] == pd.Timestamp(day) and back["as_of"].drop(index=2).isna().all()
    )

    tables.append({"source_status": status}, schema=schema)
    tables.append({"source_status": status}, schema=schema)
    again = tables.read(f"{schema}.source_status")
    assert len(again) == 2 * len(status) > 0
    doubled = pd.concat([status, status], ignore_index=True)
    assert not _differences("source_status", doubled, again[list(status.columns)])


def test_the_ml_asset_on_spark_forecasts_what_it_forecasts_on_duckdb(
    spark_build: dict, sample_warehouse: Path, tmp_path: Path
):
    """The daily ML asset with its tables on Spark (``MLTablesResource(engine="spark")``: it
    reads the Spark build's marts, seeds and raw.sources and appends ml.* there): Houston's
    forecasts and test leaderboard equal the sample build's on DuckDB, row for row."""
    import dagster as dg

    from ml.tables import SparkTables
    from orchestration.config import ml_settings
    from orchestration.defs.incidents.ml import ml_forecasts, ml_run_config
    from orchestration.resources import MLTablesResource, WarehouseResource, dbt_spark_session

    # the sample build's settings (no CRIMECAST_* but the warehouse), Houston only; the DuckDB
    # file named here is never opened (artifacts are written beside it)
    config = ml_run_config(ml_settings({}), ["houston"])
    unused = WarehouseResource(database=str(tmp_path / "not_opened.duckdb"))
    result = dg.materialize(
        [ml_forecasts],
        resources={"ml_tables": MLTablesResource(engine="spark", warehouse=unused)},
        run_config={"ops": config},
    )
    assert result.success
    assert not (tmp_path / "not_opened.duckdb").exists()
    (mat, *_rest) = result.asset_materializations_for_node("ml_forecasts")
    run_id = mat.metadata["run_id"].value

    spark = SparkTables(dbt_spark_session())
    latest = "(select max(run_id) from ml.{t} where source = 'houston')"
    queries = {
        "forecasts": "select * from ml.forecasts where source = 'houston' and run_id = {run}",
        "leaderboard": "select * from ml.leaderboard where source = 'houston' "
        "and split = 'test' and run_id = {run}",
    }
    con = duckdb.connect(str(sample_warehouse), read_only=True)
    try:
        for table, sql in queries.items():
            expected = con.execute(sql.format(run=latest.format(t=table))).df()
            got = spark.read(sql.format(run="?"), [run_id])
            assert len(got) == len(expected) > 0, table
            # the run's own stamps differ; every forecast, band, model and score must not
            stamps = [c for c in ("run_id", "created_at") if c in expected.columns]
            assert list(got.columns) == list(expected.columns), table
            assert not _differences(table, expected.drop(columns=stamps), got.drop(columns=stamps))
    finally:
        con.close()
