"""Dagster resources: the DuckDB warehouse (dagster-duckdb's ``DuckDBResource`` with a lock
timeout), the engine the ML assets read and write their tables on (``MLTablesResource``:
DuckDB, or Spark for the scale-out of docs/scale-out.md) and the run defaults read from the
environment when the definitions are built."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import Field

from ml.tables import DuckDBTables, SparkTables, Tables
from orchestration.config import DBT_PROJECT_DIR, Settings, artifacts_dir, resolve_path

#: the engines ``MLTablesResource`` knows (CRIMECAST_ML_ENGINE)
ML_ENGINES = ("duckdb", "spark")

#: DuckDB's message when another process holds the file: `… Conflicting lock is held in
#: <program> (PID <n>) …`
_LOCK_HOLDER = re.compile(r"held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


class WarehouseBusyError(RuntimeError):
    """The warehouse file is open in another process (DuckDB: one writer, or readers only)."""


def busy_message(db: Path, exc: Exception, published: Path | None = None) -> str:
    """One line: who holds the warehouse and what to do."""
    m = _LOCK_HOLDER.search(str(exc))
    holder = f"PID {m['pid']}: {m['program']}" if m else str(exc).splitlines()[0]
    copy = published or Settings(warehouse=db, sources=None).published
    return (
        f"warehouse {db} is open in another process ({holder}); close it (a notebook, the "
        f"Dagster UI's run, dbt) or query the published copy {copy}"
    )


def connect_with_retry(
    db: Path,
    read_only: bool = False,
    timeout_s: float = 10.0,
    config: dict | None = None,
    published: Path | None = None,
) -> duckdb.DuckDBPyConnection:
    """`duckdb.connect`, retried with backoff for up to `timeout_s` while another process holds
    the file's lock (a notebook closing, the previous run's dbt exiting), then a
    WarehouseBusyError naming the holder."""
    deadline = time.monotonic() + timeout_s
    delay = 0.1
    while True:
        try:
            return duckdb.connect(str(db), read_only=read_only, config=config or {})
        except duckdb.IOException as exc:
            if "Could not set lock" not in str(exc):
                raise
            left = deadline - time.monotonic()
            if left <= 0:
                # from None: the one line above is the cause a user reads (it names the holder)
                raise WarehouseBusyError(busy_message(db, exc, published)) from None
            if delay == 0.1:
                dg.get_dagster_logger().info(
                    f"{busy_message(db, exc, published)}; retrying for up to {timeout_s:g} s"
                )
            time.sleep(min(delay, left))
            delay = min(delay * 2, 2.0)


class WarehouseResource(DuckDBResource):
    """The DuckDB file (``database``, relative paths from the repo root; the Definitions set it
    with ``dg.EnvVar("CRIMECAST_WAREHOUSE")``). dagster-duckdb's resource, with read-only
    connections and a bounded wait for another process's lock (DuckDB allows one read-write
    process at a time: open a connection per unit of work, close it before dbt runs)."""

    #: how long to wait for another process to release the file before failing
    lock_timeout_s: float = Field(
        default=10.0,
        description="Seconds to wait for another process to release the file "
        "(CRIMECAST_LOCK_TIMEOUT_S), then fail naming the holder.",
    )
    published: str = Field(
        default="",
        description="The read-only copy readers use (CRIMECAST_PUBLISHED); empty: "
        "<warehouse dir>/published/<warehouse file name>.",
    )

    @property
    def path(self) -> Path:
        """The warehouse file, absolute (dbt gets this path too)."""
        return resolve_path(self.database)

    @property
    def paths(self) -> Settings:
        """The folders beside the warehouse (sample/, downloads/, artifacts/, published/)."""
        return Settings(warehouse=self.path, sources=None, published_path=self.published)

    @property
    def artifacts_dir(self) -> Path:
        return artifacts_dir(self.path)

    @contextmanager
    def get_connection(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        db = self.path
        db.parent.mkdir(parents=True, exist_ok=True)
        con = connect_with_retry(
            db,
            read_only=read_only,
            timeout_s=self.lock_timeout_s,
            config=dict(self.connection_config),
            published=self.paths.published,
        )
        try:
            yield con
        finally:
            con.close()

    #: crimecast's name for get_connection
    connect = get_connection


def dbt_spark_session(target: str = "spark", profiles_dir: Path = DBT_PROJECT_DIR):
    """The Spark session of the dbt profile's ``target`` (dbt-spark's ``session`` method): the
    active one if this process has one (dbt ran in it), else one built as dbt-spark builds it,
    from the profile's ``server_side_parameters`` rendered with dbt's own renderer. One home
    for the Spark settings (master, metastore, warehouse folder): profiles.yml."""
    import os

    from dbt.config.profile import read_profile
    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    set_invocation_context(os.environ)  # what dbt's env_var() reads
    profiles = read_profile(str(profiles_dir))
    (profile,) = profiles.values()
    output = ProfileRenderer({}).render_data(profile["outputs"][target])
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in output.get("server_side_parameters", {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


class MLTablesResource(dg.ConfigurableResource):
    """Where the ML assets read their inputs (marts, seeds, raw.sources) and append ml.*:
    ``duckdb`` (default), the warehouse file; ``spark``, the catalog of the dbt ``spark``
    target's session (the marts ``dbt build --target spark`` built; docs/scale-out.md). The
    models run in this process either way, on the pandas frames the engine returns."""

    engine: str = Field(
        default="duckdb",
        description="duckdb (the warehouse file) or spark (the dbt spark target's catalog). "
        "CRIMECAST_ML_ENGINE.",
    )
    warehouse: WarehouseResource

    @contextmanager
    def open(self, write: bool = False) -> Iterator[Tables]:
        """The tables for one unit of work (DuckDB: a connection, read-only unless
        ``write``, closed after it)."""
        if self.engine not in ML_ENGINES:
            raise dg.Failure(
                f"ml_tables: engine {self.engine!r} is not one of {', '.join(ML_ENGINES)} "
                "(CRIMECAST_ML_ENGINE)"
            )
        if self.engine == "spark":
            yield SparkTables(dbt_spark_session())
            return
        with self.warehouse.connect(read_only=not write) as con:
            yield DuckDBTables(con)


class RunDefaults(dg.ConfigurableResource):
    """The run settings of the environment when the definitions were built (CRIMECAST_SOURCES,
    CRIMECAST_INPUT_<NAME>, CRIMECAST_FRANCE_MODELS, CRIMECAST_SKIP_DASHBOARDS): what a run
    uses where an asset's run config (the launchpad) leaves a setting empty."""

    sources: list[str] = Field(
        default=[],
        description="Sources a run loads (incident mappings, france, saopaulo); empty: all. "
        "CRIMECAST_SOURCES.",
    )
    inputs: dict[str, str] = Field(
        default={},
        description="Input per source (file, folder, glob, URL or 'sample'), e.g. "
        "{houston: data/houston.csv, france_regional: ...}; a source not named uses its "
        "mapping's default. CRIMECAST_INPUT_<NAME>.",
    )
    france_models: str = Field(
        default="",
        description="France models tried (comma list, or 'all'); empty: "
        "ml.annual.DEFAULT_MODELS. CRIMECAST_FRANCE_MODELS.",
    )

    skip_dashboards: bool = Field(
        default=False,
        description="The dashboards/site asset logs that it skipped and builds nothing. "
        "CRIMECAST_SKIP_DASHBOARDS=1.",
    )

    def input_for(self, source: str) -> str | None:
        """The input named for ``source``; None → the mapping's default."""
        value = self.inputs.get(source, "").strip()
        return value or None
