"""The DuckDB warehouse resource: short-lived connections, one writer at a time."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

#: DuckDB's message when another process holds the file: `… Conflicting lock is held in
#: <program> (PID <n>) …`
_LOCK_HOLDER = re.compile(r"held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


class WarehouseBusyError(RuntimeError):
    """The warehouse file is open in another process (DuckDB: one writer, or readers only)."""


def busy_message(db: Path, exc: Exception) -> str:
    """One line: who holds the warehouse and what to do."""
    from orchestration.config import settings

    m = _LOCK_HOLDER.search(str(exc))
    holder = f"PID {m['pid']}: {m['program']}" if m else str(exc).splitlines()[0]
    return (
        f"warehouse {db} is open in another process ({holder}); close it (a notebook, the "
        f"Dagster UI's run, dbt) or query the published copy {settings().published}"
    )


def connect_with_retry(
    db: Path, read_only: bool = False, timeout_s: float = 10.0
) -> duckdb.DuckDBPyConnection:
    """`duckdb.connect`, retried with backoff for up to `timeout_s` while another process holds
    the file's lock (a notebook closing, the previous run's dbt exiting), then a
    WarehouseBusyError naming the holder."""
    deadline = time.monotonic() + timeout_s
    delay = 0.1
    while True:
        try:
            return duckdb.connect(str(db), read_only=read_only)
        except duckdb.IOException as exc:
            if "Could not set lock" not in str(exc):
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                # from None: the one line above is the cause a user reads (it names the holder)
                raise WarehouseBusyError(busy_message(db, exc)) from None
            if delay == 0.1:
                dg.get_dagster_logger().info(
                    f"{busy_message(db, exc)}; retrying for up to {timeout_s:g} s"
                )
            time.sleep(min(delay, left))
            delay = min(delay * 2, 2.0)


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB file. Open a connection per unit of work and close it before dbt runs:
    DuckDB allows one read-write process at a time (see docs/decisions.md)."""

    path: str
    #: how long to wait for another process to release the file before failing
    lock_timeout_s: float = 10.0

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        db = Path(self.path)
        db.parent.mkdir(parents=True, exist_ok=True)
        con = connect_with_retry(db, read_only=read_only, timeout_s=self.lock_timeout_s)
        try:
            yield con
        finally:
            con.close()
