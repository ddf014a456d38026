"""The dbt sources of a built DuckDB warehouse as Parquet, registered as Spark tables.

The Spark target of the dbt project (profiles.yml `spark`, docs/scale-out.md) reads the same
source tables as DuckDB: raw.* (the loaders) and ml.* (the ML step; the serving models read
them). :func:`export_parquet` writes each of them to ``<folder>/<schema>/<table>/data.parquet``
(DuckDB's COPY, types Spark reads: see :data:`_SPARK_TYPES`), a folder per table so that the
ML on Spark (``ml.tables.SparkTables``) can append its runs' files beside it;
:func:`register_spark_tables`
registers them in the Spark metastore of that target (`CREATE TABLE … USING parquet
LOCATION`, dbt macro `register_parquet_tables`) through a dbt run-operation, so the target's
own session settings are used.

    python -m ingest.parquet warehouse/crimecast.duckdb warehouse/spark/sources [--register]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import duckdb

from orchestration.config import DBT_PROJECT_DIR

#: the schemas whose tables are dbt sources
SOURCE_SCHEMAS = ("raw", "ml")

#: tables written as Hive-style partitions (``<table>/source=boston/…``): one folder per city,
#: so a city's rows are replaced, read or pruned alone (Spark and DuckDB read the layout)
PARTITION_BY = {"raw.incidents": ("source",)}

#: DuckDB types Spark cannot read from Parquet (or reads as another type), as the type written:
#: HUGEINT is a 16-byte integer Spark has no type for, UUID a 16-byte binary, unsigned integers
#: are widened. Timestamps without time zone are written as instants (UTC): Spark would read
#: them as TIMESTAMP_NTZ, which the models' timestamp arithmetic and contracts do not expect.
_SPARK_TYPES = {
    "HUGEINT": "BIGINT",
    "UHUGEINT": "BIGINT",
    "UBIGINT": "BIGINT",
    "UINTEGER": "BIGINT",
    "USMALLINT": "INTEGER",
    "UTINYINT": "SMALLINT",
    "UUID": "VARCHAR",
    "TIMESTAMP": "TIMESTAMPTZ",
    "TIMESTAMP_NS": "TIMESTAMPTZ",
    "TIMESTAMP_MS": "TIMESTAMPTZ",
    "TIMESTAMP_S": "TIMESTAMPTZ",
}


def export_parquet(warehouse: Path, folder: Path) -> list[str]:
    """Every table of :data:`SOURCE_SCHEMAS` in ``warehouse`` (opened read-only) as
    ``folder/<schema>/<table>/data.parquet``, or partitioned (:data:`PARTITION_BY`:
    ``folder/raw/incidents/source=<name>/…``), the table's folder replaced; returns their
    names ``schema.table``."""
    if not Path(warehouse).is_file():
        raise FileNotFoundError(f"no DuckDB warehouse at {warehouse}: build it first (make run)")
    names: list[str] = []
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        # Parquet timestamps are instants in UTC whatever the session's zone
        con.execute("set timezone = 'UTC'")
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables"
            " where table_type = 'BASE TABLE' and table_schema in"
            f" ({', '.join('?' for _ in SOURCE_SCHEMAS)}) order by 1, 2",
            list(SOURCE_SCHEMAS),
        ).fetchall()
        for schema, table in tables:
            columns = con.execute(
                "select column_name, data_type from information_schema.columns"
                " where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, table],
            ).fetchall()
            select = ", ".join(_spark_column(name, kind) for name, kind in columns)
            name = f"{schema}.{table}"
            out = table_folder(folder, name) / "data.parquet"
            shutil.rmtree(out.parent, ignore_errors=True)
            out.parent.mkdir(parents=True)
            query = f'select {select} from "{schema}"."{table}"'
            if name in PARTITION_BY:
                keys = ", ".join(f'"{c}"' for c in PARTITION_BY[name])
                con.execute(
                    f"copy ({query}) to '{_sql_path(out.parent)}' "
                    f"(format parquet, partition_by ({keys}), filename_pattern 'data_{{i}}')"
                )
            else:
                con.execute(f"copy ({query}) to '{_sql_path(out)}' (format parquet)")
            names.append(f"{schema}.{table}")
    finally:
        con.close()
    return names


def table_folder(folder: Path, name: str) -> Path:
    """Where :func:`export_parquet` writes table ``schema.table`` (its Spark LOCATION)."""
    schema, table = name.split(".", 1)
    return Path(folder) / schema / table


def _spark_column(name: str, kind: str) -> str:
    quoted = '"' + name.replace('"', '""') + '"'
    target = _SPARK_TYPES.get(kind.upper())
    return f"cast({quoted} as {target}) as {quoted}" if target else quoted


def _sql_path(path: Path) -> str:
    return str(Path(path).resolve()).replace("'", "''")


def register_spark_tables(
    folder: Path, names: list[str], *, project_dir: Path, target: str = "spark"
) -> None:
    """Register ``folder/<schema>/<table>/`` of each ``schema.table`` of ``names`` as a
    Spark table of the dbt target ``target`` (its metastore, its session settings), replacing
    a table of that name. Raises RuntimeError when dbt fails."""
    from dbt.cli.main import dbtRunner

    tables = []
    for full_name in names:
        schema, name = full_name.split(".", 1)
        path = table_folder(folder, full_name).resolve()
        tables.append(
            {
                "schema": schema,
                "name": name,
                "path": str(path),
                "partitioned": full_name in PARTITION_BY,
            }
        )
    result = dbtRunner().invoke(
        ["run-operation", "register_parquet_tables", "--target", target]
        + ["--project-dir", str(project_dir), "--profiles-dir", str(project_dir)]
        + ["--args", json.dumps({"tables": tables})]
    )
    if not result.success:
        raise RuntimeError(f"registering the Parquet tables on Spark failed: {result.exception}")


def main(argv: list[str] | None = None) -> None:
    """Command line: export, and with --register register on the Spark target."""
    parser = argparse.ArgumentParser(prog="python -m ingest.parquet", description=__doc__)
    parser.add_argument("warehouse", type=Path, help="the DuckDB warehouse file (read only)")
    parser.add_argument("folder", type=Path, help="where the Parquet files are written")
    parser.add_argument(
        "--register", action="store_true", help="register them as tables of the dbt spark target"
    )
    parser.add_argument(
        "--project-dir",
        type=Path,
        default=Path(os.environ.get("DBT_PROJECT_DIR", DBT_PROJECT_DIR)),
        help="the dbt project (and profiles) folder (default: the repository's dbt_project, "
        "wherever this runs from)",
    )
    args = parser.parse_args(argv)
    try:
        names = export_parquet(args.warehouse, args.folder)
    except (FileNotFoundError, duckdb.Error) as exc:
        raise SystemExit(f"export failed: {exc}") from exc
    print(f"{len(names)} tables written to {args.folder}")
    if args.register:
        try:
            register_spark_tables(args.folder, names, project_dir=args.project_dir)
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from exc
        print(f"{len(names)} tables registered on the spark target")


if __name__ == "__main__":
    main()
