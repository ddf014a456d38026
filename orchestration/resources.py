"""The DuckDB warehouse resource: short-lived connections, one writer at a time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB file. Open a connection per unit of work and close it before dbt runs:
    DuckDB allows one read-write process at a time (see docs/decisions.md)."""

    path: str

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        db = Path(self.path)
        db.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(db), read_only=read_only)
        try:
            yield con
        finally:
            con.close()
