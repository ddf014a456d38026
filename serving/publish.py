"""Publish a read-only copy of the warehouse for the dashboards and the forecast API.

DuckDB allows one read-write process or many read-only ones, never both: a dashboard build or an
API process reading the live warehouse would block the pipeline (and vice versa). Readers use a
*published copy* instead, replaced atomically:

1. take a consistent snapshot of the allow-listed tables (``PUBLISHED_TABLES``, below) and of
   the ``serving`` schema (the dbt serving models) into a temporary file in the target's folder
   (table by table, through a READ_ONLY attach: it includes anything still in the write-ahead
   log and waits for no one; a raw byte copy of a file that a writer has open can be torn, and
   misses the WAL);
2. add ``serving.published`` (when) and ``serving.published_tables`` (what, and what was
   withheld);
3. close, ``fsync`` the file, ``os.replace`` it over the target, ``fsync`` the folder.

A reader therefore sees either the previous copy or the new one, never a half-written file.
Publishers of one folder take turns (an ``flock`` on the folder); each first removes the temp
files that a killed publisher left there (its own name pattern ``.<target>.<8 hex>.tmp``).

What is published
-----------------
``PUBLISHED_TABLES`` is the allow-list of the warehouse's own tables: the copy holds those
tables (when the warehouse has them) and the ``serving`` schema, nothing else. Nothing
record-level (``raw.incidents``, ``raw.saopaulo_phone_thefts``, staging,
``marts.saopaulo_phone_theft_records``) and nothing operational (``meta.*``, ``ml.model_runs``
with its artifact paths). On the way:

* small cells: a table that declares a ``record_count`` column loses its rows built from fewer
  than ``MIN_CELL_RECORDS`` (5, the var of dbt_project.yml; the rule of docs/saopaulo.md;
  ml/saopaulo/ and the serving models already apply it, so this is the guard of the ml.* copies);
* vintages: the ml tables append one vintage per run (``run_id``). The copy keeps the latest
  ``CRIMECAST_PUBLISH_KEEP_RUNS`` (default 5) runs per source of every table with a ``run_id``,
  serving tables included; the warehouse keeps all.

``serving.published_tables`` lists every published table with its rows and the rows withheld
by either rule.

The ``serving`` schema
----------------------
The contract the dashboards, the API and the run summary read is dbt's:
dbt_project/models/serving/ (enforced contracts: names, types; the "latest run per source" rule
of the ``*_latest`` models; São Paulo's small cells withheld), built by Dagster after the ML
assets. Every serving table exists whether or not the pipeline produced its origin yet (then
empty); ``serving.availability`` says which is which, so a page can say "not available yet".
This module only copies it: a warehouse without a ``serving`` schema gives a copy without one.
See docs/architecture.md ("Serving contract") and docs/dashboards.md.

CLI: ``python -m serving.publish [--warehouse PATH] [--target PATH]`` (``make dashboards``);
without ``--warehouse`` it copies the run's published copy (asset ``published/warehouse``) when
there is one, so it never waits for a running pipeline.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import re
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from orchestration.config import MIN_CELL_RECORDS, REPO_ROOT, settings

DEFAULT_TARGET = REPO_ROOT / "dashboards" / "sources" / "crimecast" / "crimecast.duckdb"
SRC = "pub_src"
DST = "pub_dst"
KEEP_RUNS_ENV = "CRIMECAST_PUBLISH_KEEP_RUNS"
DEFAULT_KEEP_RUNS = 5
#: how long a publisher waits for another one publishing into the same folder
LOCK_TIMEOUT_S = 600.0
log = logging.getLogger("crimecast.publish")


@dataclass(frozen=True)
class PublishedTable:
    """One table of the published copy. ``record_count``: the column holding the number of
    records behind each row; rows below ``MIN_CELL_RECORDS`` are withheld. Tables with a
    ``run_id`` column keep the latest runs only (per ``source`` when they have one)."""

    name: str
    why: str
    record_count: str | None = None


_SP = "São Paulo, built from records: small cells withheld"
#: The allow-list: the published copy holds these tables and nothing else (plus ``serving``).
PUBLISHED_TABLES: tuple[PublishedTable, ...] = (
    # lineage: what was loaded (file, hash, rows), no record
    PublishedTable("raw.sources", "serving.sources"),
    PublishedTable("raw.source_files", "serving.source_files; summary"),
    PublishedTable("raw.saopaulo_source_files", "summary (sample or real input)"),
    # marts
    PublishedTable("marts.daily_counts", "serving.daily_counts; open police data, per day"),
    PublishedTable("marts.incidents_data_quality", "serving.data_quality"),
    PublishedTable("marts.france_annual_rates", "serving.france_annual_rates"),
    # forecasts and backtests of the incident sources
    PublishedTable("ml.forecasts", "serving.forecasts; vintage query (docs/forecasting.md)"),
    PublishedTable("ml.forecasts_hierarchy", "serving.forecasts_hierarchy"),
    PublishedTable("ml.backtest_metrics", "serving.backtest_metrics; summary; README query"),
    PublishedTable("ml.backtest_predictions", "serving.backtest_predictions"),
    PublishedTable("ml.backtest_series_metrics", "analysts (docs/forecasting.md)"),
    PublishedTable("ml.source_status", "summary: each source forecast or skipped, and why"),
    PublishedTable("ml.interval_coverage", "analysts (docs/forecasting.md)"),
    PublishedTable("ml.champions", "analysts (docs/forecasting.md)"),
    PublishedTable("ml.feature_importance", "analysts (docs/forecasting.md)"),
    PublishedTable("ml.leaderboard", "serving.leaderboard"),
    PublishedTable("marts.leaderboard", "an older name of ml.leaderboard (analysts)"),
    PublishedTable("ml.forecast_explanations", "serving.explanations"),
    PublishedTable("ml.explanations", "an older name of ml.forecast_explanations (analysts)"),
    PublishedTable("marts.forecast_explanations", "an older name (analysts)"),
    PublishedTable("ml.anomalies", "serving.anomalies"),
    PublishedTable("marts.anomalies", "an older name of ml.anomalies (analysts)"),
    # France (annual aggregates published by the ministry)
    PublishedTable("ml.france_forecasts", "serving.france_forecasts"),
    PublishedTable("ml.france_backtest_metrics", "summary; docs/france.md"),
    PublishedTable("ml.france_backtest_predictions", "docs/france.md"),
    # São Paulo: aggregates only, each with the count of records behind it
    PublishedTable("ml.saopaulo_place_probabilities", _SP, record_count="n_records"),
    PublishedTable("ml.saopaulo_calibration", _SP, record_count="count"),
    PublishedTable("ml.saopaulo_metrics", _SP + " (n: held-out records)", record_count="n"),
    PublishedTable("ml.saopaulo_ablation", "São Paulo feature selection: log losses only"),
)
_ALLOWED = {t.name for t in PUBLISHED_TABLES}
#: the schema dbt builds the serving contract in (dbt_project/models/serving/): copied whole
SERVING_SCHEMA = "serving"
#: tables the publisher adds to ``serving`` itself (the rest are the dbt serving models)
PUBLISHER_TABLES = ("published", "published_tables")


def keep_runs_setting() -> int:
    """``CRIMECAST_PUBLISH_KEEP_RUNS``: how many runs (vintages) per source the copy keeps."""
    value = os.environ.get(KEEP_RUNS_ENV, "").strip()
    if not value:
        return DEFAULT_KEEP_RUNS
    if not value.isdecimal() or int(value) < 1:
        raise ValueError(f"{KEEP_RUNS_ENV}={value!r} must be a whole number of runs, at least 1")
    return int(value)


def _exists(con: duckdb.DuckDBPyConnection, catalog: str, schema: str, table: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables "
        "where table_catalog = ? and table_schema = ? and table_name = ?",
        [catalog, schema, table],
    ).fetchone()
    return bool(row and row[0])


def _columns(con: duckdb.DuckDBPyConnection, catalog: str, schema: str, table: str) -> list[str]:
    rows = con.execute(
        "select column_name from information_schema.columns "
        "where table_catalog = ? and table_schema = ? and table_name = ? "
        "order by ordinal_position",
        [catalog, schema, table],
    ).fetchall()
    return [r[0] for r in rows]


def _lit(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _serving_tables(con: duckdb.DuckDBPyConnection) -> list[PublishedTable]:
    """The serving models dbt built in the warehouse (tables of schema ``serving``)."""
    rows = con.execute(
        "select table_name from information_schema.tables where table_catalog = ? "
        "and table_schema = ? and table_type = 'BASE TABLE' order by 1",
        [SRC, SERVING_SCHEMA],
    ).fetchall()
    names = [r[0] for r in rows if r[0] not in PUBLISHER_TABLES]
    return [PublishedTable(f"{SERVING_SCHEMA}.{n}", "serving contract (dbt)") for n in names]


def _write_published(con: duckdb.DuckDBPyConnection, published: list[tuple]) -> None:
    """serving.published (when) and serving.published_tables (what, what was withheld); the
    row counts of serving.availability become those of the copy."""
    con.execute(f"create schema if not exists {DST}.serving")
    con.execute(f"use {DST}")
    if _exists(con, DST, "serving", "availability"):
        for name, rows, *_rest in published:
            schema, table = name.split(".")
            if schema == SERVING_SCHEMA:
                con.execute(
                    "update serving.availability set row_count = ? where name = ?", [rows, table]
                )
    con.execute(
        "create table serving.published as select cast(? as timestamp) as published_at, "
        "cast(? as varchar) as warehouse",
        [time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "crimecast"],
    )
    con.execute(
        "create table serving.published_tables (table_name VARCHAR, row_count BIGINT, "
        "rows_withheld_small_cells BIGINT, rows_withheld_old_runs BIGINT, runs_kept BIGINT)"
    )
    if published:
        con.executemany("insert into serving.published_tables values (?, ?, ?, ?, ?)", published)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_table(
    con: duckdb.DuckDBPyConnection, spec: PublishedTable, keep_runs: int
) -> tuple | None:
    """Copy one allow-listed table, without its small cells and old runs. Returns its row of
    serving.published_tables, or None when the warehouse has no such table."""
    schema, table = spec.name.split(".")
    if not _exists(con, SRC, schema, table):
        return None
    have = _columns(con, SRC, schema, table)
    src = f"{SRC}.{_q(schema)}.{_q(table)}"
    big, recent, runs = "true", "true", "null"
    if spec.record_count:
        if spec.record_count not in have:
            raise ValueError(
                f"{spec.name} has no column {spec.record_count!r}, declared as its count of "
                "records in PUBLISHED_TABLES: cannot apply the small-cell rule, not published"
            )
        big = f"coalesce({_q(spec.record_count)} >= {MIN_CELL_RECORDS}, false)"
    if "run_id" in have:
        by = ["source"] if "source" in have else []
        keys = ", ".join([*by, "run_id"])
        part = f"partition by {by[0]} " if by else ""
        recent = (
            f"({keys}) in (select {keys} from (select distinct {keys} from {src}) "
            f"qualify row_number() over ({part}order by run_id desc) <= {int(keep_runs)})"
        )
        runs = f"count(distinct run_id) filter (where {recent})"
    total, small, old, kept_runs = con.execute(
        f"select count(*), count(*) filter (where ({recent}) and not ({big})), "
        f"count(*) filter (where not ({recent})), {runs} from {src}"
    ).fetchone()
    con.execute(f"create schema if not exists {DST}.{_q(schema)}")
    con.execute(
        f"create table {DST}.{_q(schema)}.{_q(table)} as "
        f"select * from {src} where ({recent}) and ({big})"
    )
    return (spec.name, total - small - old, small, old, kept_runs)


def _snapshot(warehouse: Path, tmp: Path, keep_runs: int) -> None:
    con = duckdb.connect(":memory:")
    try:
        # ATTACH takes no parameters: quote the paths as SQL string literals.
        con.execute(f"attach {_lit(warehouse)} as {SRC} (read_only)")
        con.execute(f"attach {_lit(tmp)} as {DST}")
        con.execute("begin transaction")
        serving = _serving_tables(con)
        if not serving:
            log.warning(
                f"{warehouse} has no serving schema (the dbt serving models have not been built):"
                " the copy has none, readers will say so"
            )
        tables = [*PUBLISHED_TABLES, *serving]
        published = [row for spec in tables if (row := _copy_table(con, spec, keep_runs))]
        con.execute("commit")
        con.execute(f"detach {SRC}")
        _write_published(con, published)
        con.execute("use memory")
        con.execute(f"checkpoint {DST}")
        con.execute(f"detach {DST}")
    finally:
        con.close()


def copy_source(warehouse: Path | None = None) -> Path:
    """What a reader's copy is made from: the run's published copy (``settings().published``)
    when there is one, so that a running pipeline is never in the way; else ``warehouse``
    (default: the configured warehouse)."""
    run_copy = settings().published
    return run_copy if run_copy.exists() else Path(warehouse or settings().warehouse)


def temp_name_pattern(target: Path) -> re.Pattern[str]:
    """Names of the publisher's temporary files for ``target`` (and their WALs)."""
    return re.compile(rf"\.{re.escape(target.name)}\.[0-9a-f]{{8}}\.tmp(\.wal)?")


def _remove_stray_temp_files(target: Path) -> list[str]:
    """Delete what a killed publisher of ``target`` left in its folder. Only called under the
    folder lock, so no live publisher owns one of them."""
    pattern, removed = temp_name_pattern(target), []
    for path in target.parent.iterdir():
        if pattern.fullmatch(path.name) and path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)
            removed.append(path.name)
    if removed:
        log.warning(
            f"removed {len(removed)} stray temp file(s) of an interrupted publication "
            f"in {target.parent}: {', '.join(sorted(removed))}"
        )
    return removed


class _FolderLock:
    """An exclusive ``flock`` on the target's folder (released by the kernel when the process
    dies, so a killed publisher never blocks the next one; no lock file to leave behind)."""

    def __init__(self, folder: Path, timeout_s: float | None = None) -> None:
        # read at call time, not at import (tests and callers may lower LOCK_TIMEOUT_S)
        self.timeout_s = LOCK_TIMEOUT_S if timeout_s is None else timeout_s
        self.folder, self.fd = folder, -1

    def __enter__(self) -> _FolderLock:
        self.fd = os.open(self.folder, os.O_RDONLY)
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise RuntimeError(
                        f"another publication into {self.folder} has been running for more "
                        f"than {self.timeout_s:.0f} s; retry when it is done"
                    ) from None
                time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def publish_copy(warehouse: Path, target: Path, *, keep_runs: int | None = None) -> Path:
    """Publish the allow-listed tables of ``warehouse`` at ``target``, atomically.

    ``keep_runs``: runs (vintages) kept per source, default ``CRIMECAST_PUBLISH_KEEP_RUNS``
    or 5. Returns ``target``. Raises FileNotFoundError when the warehouse does not exist,
    ValueError for a bad setting and RuntimeError (naming the file) when it cannot be read,
    e.g. while a writer holds it."""
    warehouse, target = Path(warehouse).resolve(), Path(target).resolve()
    keep_runs = keep_runs_setting() if keep_runs is None else keep_runs
    if keep_runs < 1:
        raise ValueError(f"keep_runs={keep_runs} must be at least 1")
    if not warehouse.exists():
        raise FileNotFoundError(f"warehouse {warehouse} does not exist: run the pipeline first")
    if warehouse == target:
        raise ValueError("the published copy must not be the warehouse itself")
    target.parent.mkdir(parents=True, exist_ok=True)
    with _FolderLock(target.parent):
        _remove_stray_temp_files(target)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            try:
                _snapshot(warehouse, tmp, keep_runs)
            except duckdb.IOException as exc:
                raise RuntimeError(
                    f"cannot read the warehouse {warehouse} (is the pipeline writing it right "
                    "now? DuckDB allows one writer and no readers meanwhile; retry when it is "
                    f"done): {exc}"
                ) from exc
            _fsync(tmp)
            # A WAL left beside the previous copy would be replayed onto the new one. Readers
            # open the copy read-only, so there is none unless someone wrote to it by hand.
            target.with_name(target.name + ".wal").unlink(missing_ok=True)
            os.replace(tmp, target)
            _fsync(target.parent)
        finally:
            for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
                leftover.unlink(missing_ok=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serving.publish",
        description="Publish a read-only copy of the warehouse for the dashboards and the API.",
    )
    parser.add_argument(
        "--warehouse",
        type=Path,
        default=None,
        help="what to copy (default: the run's published copy when there is one, so that a "
        "running pipeline is not in the way; else $CRIMECAST_WAREHOUSE or "
        "warehouse/crimecast.duckdb)",
    )
    parser.add_argument(
        "--target",
        type=Path,
        default=DEFAULT_TARGET,
        help=f"where to publish (default: {DEFAULT_TARGET.relative_to(REPO_ROOT)})",
    )
    parser.add_argument(
        "--keep-runs",
        type=int,
        default=None,
        help=f"runs (vintages) kept per source (default ${KEEP_RUNS_ENV} or {DEFAULT_KEEP_RUNS})",
    )
    args = parser.parse_args(argv)
    warehouse = args.warehouse or copy_source()
    t0 = time.perf_counter()
    try:
        out = publish_copy(warehouse, args.target, keep_runs=args.keep_runs)
    except (FileNotFoundError, RuntimeError, ValueError) as exc:
        print(f"publish: {exc}", file=sys.stderr)
        return 1
    size = out.stat().st_size / 1e6
    print(f"published {warehouse} -> {out} ({size:.1f} MB, {time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
