"""The warehouse tables the ML layer reads and writes, behind one small interface.

``Tables`` is what the ML assets (the daily ``ml_forecasts``, the annual ``france_ml``) see of
the warehouse: ``read`` a table or a query into a pandas frame, ``append`` frames to
``<schema>.<name>`` (default schema ``ml``) in one transaction. Every run APPENDS its rows
(vintages by ``run_id``; readers keep the latest run through the dbt ``*_latest`` serving models
and the publisher's keep-runs rule), and a column that a newer version of the code writes is
added to an older table, so an existing warehouse keeps working.

``DuckDBTables`` is the implementation over a DuckDB connection (the single-file default). An
engine that reads Parquet or a Spark session implements the same two methods (issue 16,
docs/scale-out.md).
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
        text = sql_or_table.strip()
        sql = f"select * from {text}" if _TABLE_NAME.fullmatch(text) else text
        return self.con.execute(sql, list(params) if params is not None else None).df()

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
