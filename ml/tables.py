"""The warehouse tables the ML layer reads and writes, behind one small interface.

``Tables`` is what the ML assets (the daily ``ml_forecasts``, the annual ``france_ml``) see of
the warehouse: ``read`` a table or a query into a pandas frame, ``append`` frames to
``<schema>.<name>`` (default schema ``ml``) in one transaction. Every run APPENDS its rows
(vintages by ``run_id``; readers keep the latest run through the dbt ``*_latest`` serving models
and the publisher's keep-runs rule), and a column that a newer version of the code writes is
added to an older table, so an existing warehouse keeps working.

``DuckDBTables`` is the implementation over a DuckDB connection (the single-file default);
``SparkTables`` the one over a Spark session (the dbt ``spark`` target's catalog, tables stored as
Parquet: docs/scale-out.md), with Arrow between Spark and pandas.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import duckdb
import pandas as pd

#: ``schema.table`` (or ``table``): read whole; anything else is a query
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")


def read_sql(sql_or_table: str) -> str:
    """The query ``Tables.read`` runs: a bare ``schema.table`` means the whole table."""
    text = sql_or_table.strip()
    return f"select * from {text}" if _TABLE_NAME.fullmatch(text) else text


def _ident(name: str) -> str:
    if not _TABLE_NAME.fullmatch(name) or "." in name:
        raise ValueError(f"{name!r} is not a plain table or schema name (letters, digits, _)")
    return name


@runtime_checkable
class Tables(Protocol):
    """Reads and appends of warehouse tables, engine-neutral (portable SQL with ``?`` params)."""

    def read(self, sql_or_table: str, params: Sequence | None = None) -> pd.DataFrame:
        """A table (``schema.table``) or a query's result as a pandas frame."""
        ...

    def append(self, frames: Mapping[str, pd.DataFrame], schema: str = "ml") -> dict[str, int]:
        """Append each frame to ``<schema>.<name>`` in one transaction (all or none; tables
        created on first use, missing columns added); returns the rows written per table."""
        ...


class DuckDBTables:
    """``Tables`` over an open DuckDB connection (its caller opens and closes it)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def read(self, sql_or_table: str, params: Sequence | None = None) -> pd.DataFrame:
        args = list(params) if params is not None else None
        return self.con.execute(read_sql(sql_or_table), args).df()

    def append(self, frames: Mapping[str, pd.DataFrame], schema: str = "ml") -> dict[str, int]:
        con, schema = self.con, _ident(schema)
        names = [_ident(n) for n in frames]
        con.execute("begin transaction")
        try:
            # inside the transaction: DuckDB's DDL rolls back too (no empty table left behind)
            con.execute(f"create schema if not exists {schema}")
            for name in names:
                frame = frames[name]
                con.register("frame_to_write", frame)
                con.execute(
                    f"create table if not exists {schema}.{name} as "
                    "select * from frame_to_write limit 0"
                )
                have = {
                    r[0]
                    for r in con.execute(
                        "select column_name from information_schema.columns "
                        "where table_catalog = current_database() and table_schema = ? "
                        "and table_name = ?",
                        [schema, name],
                    ).fetchall()
                }
                types = dict(
                    con.execute(
                        "select column_name, column_type from (describe frame_to_write)"
                    ).fetchall()
                )
                for col in frame.columns:
                    if col not in have:
                        con.execute(f'alter table {schema}.{name} add column "{col}" {types[col]}')
                # by name: a column the table has and the frame lacks (an older writer) is NULL
                con.execute(f"insert into {schema}.{name} by name select * from frame_to_write")
                con.unregister("frame_to_write")
            con.execute("commit")
        except Exception:
            # a commit that failed has rolled back already: keep its error, not rollback's
            with contextlib.suppress(duckdb.TransactionException):
                con.execute("rollback")
            raise
        return {name: len(frames[name]) for name in names}


class SparkTables:
    """``Tables`` over a Spark session (pyspark, the optional ``[spark]`` extra): the tables of
    its catalog, e.g. those the dbt ``spark`` target built. Queries take ``?`` parameters
    (Spark 3.5+ positional parameters); frames travel through Arrow.

    Not transactional: Parquet tables have no multi-table commit, so ``append`` converts and
    checks every frame before it writes any (a bad frame writes nothing), but a failure while
    writing can leave the tables written before it (a table format with commits, Delta or
    Iceberg, would be needed for all-or-none; docs/scale-out.md)."""

    def __init__(self, spark) -> None:
        self.spark = spark
        self.spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")

    def read(self, sql_or_table: str, params: Sequence | None = None) -> pd.DataFrame:
        from pyspark.sql import types as T

        args = list(params) if params is not None else None
        result = self.spark.sql(read_sql(sql_or_table), args=args)
        frame = result.toPandas()
        # the pandas types DuckDBTables gives (DuckDB's .df()), so the ML sees one frame:
        # dates and timestamps as datetime64[us] (Spark: datetime.date objects, ns), decimals
        # as float64 (Spark: Decimal objects)
        for field in result.schema.fields:
            kind = field.dataType
            if isinstance(kind, T.DateType | T.TimestampType | T.TimestampNTZType):
                frame[field.name] = pd.to_datetime(frame[field.name]).astype("datetime64[us]")
            elif isinstance(kind, T.DecimalType):
                frame[field.name] = frame[field.name].astype("float64")
        return frame

    def append(self, frames: Mapping[str, pd.DataFrame], schema: str = "ml") -> dict[str, int]:
        from pyspark.sql import functions as F
        from pyspark.sql.types import NullType

        schema = _ident(schema)
        catalog = self.spark.catalog
        staged = {}
        for name in (_ident(n) for n in frames):
            frame = self.spark.createDataFrame(frames[name])
            full = f"{schema}.{name}"
            exists = catalog.tableExists(full)
            have = (
                {f.name: f.dataType for f in self.spark.table(full).schema.fields} if exists else {}
            )
            # a column with no value in this frame has no type: the table's, else text
            for field in frame.schema.fields:
                if isinstance(field.dataType, NullType):
                    kind = have.get(field.name, "string")
                    frame = frame.withColumn(field.name, F.col(field.name).cast(kind))
            if exists:
                new = [f for f in frame.schema.fields if f.name not in have]
                # an older writer's column the frame lacks: NULL of the table's type
                for col, kind in have.items():
                    if col not in frame.columns:
                        frame = frame.withColumn(col, F.lit(None).cast(kind))
                staged[name] = (full, frame, new)
            else:
                staged[name] = (full, frame, None)
        self.spark.sql(f"create database if not exists {schema}")
        for full, frame, new in staged.values():
            if new is None:
                frame.write.format("parquet").saveAsTable(full)
                continue
            if new:
                columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in new)
                self.spark.sql(f"alter table {full} add columns ({columns})")
            order = [f.name for f in self.spark.table(full).schema.fields]
            frame.select(*order).write.insertInto(full)
        return {name: len(frames[name]) for name in staged}
