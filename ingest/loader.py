"""Load a source's files into raw.* with DuckDB, per its mapping ("mirror" semantics).

Per file, Python only hashes the bytes, detects the encoding (the mapping's list, tried in
order), reads the header line and — for encodings DuckDB does not read natively — transcodes
to a temporary UTF-8 file in streaming chunks. Everything else (CSV parsing in strict mode,
trimming, timestamp parsing over several formats, time-zone conversion, regex area extraction,
row filters) is one `INSERT … SELECT … FROM read_csv(…)` per file, all inside one transaction.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import logging
import re
import shutil
import tempfile
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import duckdb

try:  # POSIX: a live load holds a lock on its temporary folder (released even on SIGKILL)
    import fcntl
except ImportError:  # pragma: no cover - Windows: stale folders are told by age alone
    fcntl = None  # type: ignore[assignment]

from ingest.csv_files import line_of_row, transaction
from ingest.csv_limits import MAX_FIELD_CHARS
from ingest.fetch import FetchError, InputFile, resolve_inputs
from ingest.mapping import SourceMapping, normalize_header

_CHUNK = 1 << 20
_SETTLED_NS = 2_000_000_000  # files modified longer ago than this are hashed once
_WS = " \t\r\n\u00a0"
_DELIMS = (",", ";", "\t", "|")
_UTF8 = {"utf-8", "utf-8-sig"}
#: DuckDB's longest CSV line, set explicitly so the message can name it; the csv module's
#: field limit (first rows, read in Python) is the same constant
_MAX_LINE_BYTES = MAX_FIELD_CHARS
#: whole decimal numbers only: `1.5`, `0x10`, `1e3`, `1_000` are not counts or hours
_COUNT_RE = "[+-]?[0-9]+"
_HOUR_RE = "[0-9]{1,2}"
#: a text file has (almost) no control characters; random or compressed bytes ~20-25 %
_SNIFF_CHARS = 1024
_MAX_CONTROL_SHARE = 0.10
#: temporary folders of the loader; one left by a killed load is removed by the next load
_TMP_PREFIX = "crimecast-load-"
#: days a built load stays in raw.load_log
_LOG_KEEP_DAYS = 90
_STALE_TMP_S = 600
_log = logging.getLogger(__name__)

DDL = """
create schema if not exists raw;
create table if not exists raw.incidents (
    source VARCHAR, incident_id VARCHAR, occurred_at TIMESTAMP, occurred_at_raw VARCHAR,
    area VARCHAR, category_raw VARCHAR, offense_code VARCHAR, offense_description VARCHAR,
    incident_count INTEGER, filter_reason VARCHAR, source_file VARCHAR, source_sha256 VARCHAR,
    source_row BIGINT, loaded_at TIMESTAMP, latitude VARCHAR, longitude VARCHAR
);
-- the optional coordinates as published (trimmed text; dbt casts and checks them); added to a
-- warehouse built before them
alter table raw.incidents add column if not exists latitude VARCHAR;
alter table raw.incidents add column if not exists longitude VARCHAR;
create table if not exists raw.source_files (
    source VARCHAR, source_file VARCHAR, source_sha256 VARCHAR, encoding VARCHAR, rows BIGINT,
    loaded_at TIMESTAMP
);
create table if not exists raw.sources (
    source VARCHAR, title VARCHAR, country VARCHAR, timezone VARCHAR, mapping_sha256 VARCHAR,
    loaded_at TIMESTAMP
);
-- the mapping's dbt policies (sources/README.md); added to a warehouse built before them
alter table raw.sources add column if not exists dedupe VARCHAR;
alter table raw.sources add column if not exists dedupe_keys VARCHAR;
alter table raw.sources add column if not exists orphan_reversals VARCHAR;
alter table raw.sources add column if not exists last_day VARCHAR;
-- the plausible coordinate ranges (fields.latitude / longitude `range`, else the globe)
alter table raw.sources add column if not exists latitude_min DOUBLE;
alter table raw.sources add column if not exists latitude_max DOUBLE;
alter table raw.sources add column if not exists longitude_min DOUBLE;
alter table raw.sources add column if not exists longitude_max DOUBLE;
create table if not exists raw.file_hashes (
    file VARCHAR, size BIGINT, mtime_ns BIGINT, sha256 VARCHAR
);
-- per load that changed a source's rows: the dbt rebuild window (rebuild_window())
create table if not exists raw.load_log (
    source VARCHAR, loaded_at TIMESTAMP, rebuild_from DATE, rows_inserted BIGINT,
    rows_deleted BIGINT, full_refresh BOOLEAN, built_at TIMESTAMP
);
"""


class LoadError(Exception):
    """A file-level problem; the message names the file (and line / column where known).
    Nothing was written."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.column = column


@dataclass
class LoadResult:
    """What a load did. `files_*` and `rows_inserted` describe this load; `rows_total`,
    `rows_flagged`, `rows_unparseable_timestamp` and the date range describe the source's rows
    in raw.incidents after it."""

    source: str
    files_loaded: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)
    files_removed: list[str] = field(default_factory=list)
    rows_inserted: int = 0
    rows_flagged: dict[str, int] = field(default_factory=dict)
    rows_unparseable_timestamp: int = 0
    min_occurred_at: datetime | None = None
    max_occurred_at: datetime | None = None
    rows_total: int = 0
    rows_deleted: int = 0
    #: the earliest day whose rows this load inserted or deleted (raw.load_log), None if none
    rebuild_from: date | None = None
    #: a day that had rows has none now: dbt needs a full refresh (raw.load_log)
    full_refresh: bool = False

    def to_metadata(self) -> dict[str, Any]:
        """Plain JSON-able values (for Dagster metadata)."""
        out = asdict(self)
        for k in ("min_occurred_at", "max_occurred_at"):
            out[k] = out[k].isoformat(sep=" ") if out[k] is not None else None
        out["rebuild_from"] = self.rebuild_from.isoformat() if self.rebuild_from else None
        out["rows_flagged"] = {str(k): int(v) for k, v in self.rows_flagged.items()}
        return out


@dataclass
class _Prepared:
    item: InputFile
    sha: str
    encoding: str = ""
    read_path: Path | None = None
    header: list[str] = field(default_factory=list)
    index: dict[str, int | None] = field(default_factory=dict)
    bom: int = 0  # bytes of a UTF-8 byte-order mark to skip


# --------------------------------------------------------------------------------------------
# public entry point


def load_source(
    con: duckdb.DuckDBPyConnection,
    mapping: SourceMapping,
    input_spec: str | None = None,
    sample_dir: Path | None = None,
) -> LoadResult:
    """Load `mapping`'s input into raw.* (mirror semantics, one transaction).

    `input_spec`: None → the mapping's `input`; `sample` → generate the sample into
    `sample_dir` (default `<warehouse dir>/sample/<source>`) and load it; otherwise a file,
    folder, glob or http(s) URL. A relative path is looked up in the current directory, then
    in the repository root (the parent of the mapping's folder)."""
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    specs = (input_spec.strip(),) if input_spec and input_spec.strip() else mapping.input
    db_dir = _database_dir(con)
    tmp_parent = db_dir / "tmp" if db_dir else Path(tempfile.gettempdir())
    tmp_parent.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(tmp_parent)
    with _load_tmp_dir(tmp_parent) as tmp_dir:
        inputs = _resolve(mapping, specs, sample_dir, db_dir, tmp_dir)
        con.execute(DDL)
        hashes = _HashCache(con)
        prepared = [_Prepared(item, hashes.sha256(item)) for item in inputs]
        loaded = dict(
            con.execute(
                "select source_sha256, source_file from raw.source_files where source = ?",
                [mapping.name],
            ).fetchall()
        )
        stored_sha = con.execute(
            "select mapping_sha256 from raw.sources where source = ?", [mapping.name]
        ).fetchone()
        if stored_sha is not None and stored_sha[0] != mapping.sha256:
            loaded_keep: dict[str, str] = {}  # mapping changed: reload every file
        else:
            loaded_keep = loaded

        result = LoadResult(source=mapping.name)
        todo: list[_Prepared] = []
        seen: set[str] = set()
        for p in prepared:
            if p.sha in seen or p.sha in loaded_keep:
                result.files_skipped.append(p.item.label)
            else:
                todo.append(p)
            seen.add(p.sha)
        kept = sorted(seen & set(loaded_keep))
        result.files_removed = sorted(f for s, f in loaded.items() if s not in kept)

        for p in todo:  # all file checks before anything is written
            _prepare(p, mapping, tmp_dir)

        with _no_progress_bar(con), transaction(con):
            stale = "true"
            if kept:
                keep_sql = ", ".join(_lit(s) for s in kept)
                stale = f"(source_sha256 is null or source_sha256 not in ({keep_sql}))"
            stale_days = _days_of(con, mapping.name, stale)
            result.rows_deleted = _count(
                con, f"delete from raw.incidents where source = ? and {stale}", [mapping.name]
            )
            con.execute(
                f"delete from raw.source_files where source = ? and {stale}", [mapping.name]
            )
            for p in todo:
                n = _insert_file(con, p, mapping, loaded_at)
                con.execute(
                    "insert into raw.source_files values (?, ?, ?, ?, ?, ?)",
                    [mapping.name, p.item.label, p.sha, p.encoding, n, loaded_at],
                )
                result.files_loaded.append(p.item.label)
                result.rows_inserted += n
            hashes.save()
            _log_changes(con, mapping, result, loaded_at, stale_days)
            con.execute("delete from raw.sources where source = ?", [mapping.name])
            con.execute(
                "insert into raw.sources (source, title, country, timezone, mapping_sha256, "
                "loaded_at, dedupe, dedupe_keys, orphan_reversals, last_day, latitude_min, "
                "latitude_max, longitude_min, longitude_max) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    mapping.name,
                    mapping.title,
                    mapping.country,
                    mapping.timezone,
                    mapping.sha256,
                    loaded_at,
                    mapping.dedupe,
                    ",".join(mapping.dedupe_keys) or None,
                    mapping.orphan_reversals,
                    mapping.last_day,
                    *mapping.coordinate_range("latitude"),
                    *mapping.coordinate_range("longitude"),
                ],
            )

    _summarise(con, result)
    return result


# --------------------------------------------------------------------------------------------
# the dbt rebuild window (dbt_project/macros/incremental_window.sql)


def _days_of(con: duckdb.DuckDBPyConnection, source: str, where: str) -> list[date]:
    """The days of the source's rows matching `where` (the rows about to be deleted)."""
    return [
        r[0]
        for r in con.execute(
            "select distinct cast(occurred_at as date) from raw.incidents "
            f"where source = ? and occurred_at is not null and {where}",
            [source],
        ).fetchall()
    ]


def _log_changes(
    con: duckdb.DuckDBPyConnection,
    mapping: SourceMapping,
    result: LoadResult,
    loaded_at: datetime,
    stale_days: list[date],
) -> None:
    """One raw.load_log row when the load changed rows: the earliest day of the rows deleted
    (stale_days) or inserted. Under `dedupe: {keys}` without the timestamp a duplicate group
    can span any days, and rebuilding whole days must take whole groups: the source's first
    day. Only undated rows: the day after the last (dbt then rebuilds the undated rows).
    full_refresh: a day lost all its rows, which replacing whole days cannot remove."""
    if not result.rows_inserted and not result.rows_deleted:
        return
    (new_min,) = con.execute(
        "select min(cast(occurred_at as date)) from raw.incidents "
        "where source = ? and loaded_at = ?",
        [mapping.name, loaded_at],
    ).fetchone()
    first, last = con.execute(
        "select min(cast(occurred_at as date)), max(cast(occurred_at as date)) "
        "from raw.incidents where source = ?",
        [mapping.name],
    ).fetchone()
    days = [d for d in (new_min, min(stale_days, default=None)) if d is not None]
    if mapping.dedupe == "keys" and "timestamp" not in mapping.dedupe_keys and first:
        days.append(first)
    if not days and last is not None:
        days.append(last + timedelta(days=1))
    result.rebuild_from = min(days) if days else None
    if stale_days:
        con.execute("create or replace temporary table _crimecast_stale_days (day DATE)")
        con.executemany("insert into _crimecast_stale_days values (?)", [[d] for d in stale_days])
        result.full_refresh = bool(
            _count(
                con,
                "select count(*) from _crimecast_stale_days where day not in ("
                "select cast(occurred_at as date) from raw.incidents "
                "where source = ? and occurred_at is not null)",
                [mapping.name],
            )
        )
        con.execute("drop table _crimecast_stale_days")
    con.execute(
        "insert into raw.load_log values (?, ?, ?, ?, ?, ?, NULL)",
        [
            mapping.name,
            loaded_at,
            result.rebuild_from,
            result.rows_inserted,
            result.rows_deleted,
            result.full_refresh,
        ],
    )


@dataclass(frozen=True)
class RebuildWindow:
    """What dbt must rebuild for the loads not built yet (raw.load_log): per source the first
    day, or None for everything (a warehouse without the log); full_refresh when a load
    emptied a day. `through`: the latest load it covers (mark_built). dbt reads the same
    window from raw.load_log itself (dbt_project/macros/incremental_window.sql)."""

    days: dict[str, date] | None
    full_refresh: bool = False
    through: datetime | None = None

    def dbt_args(self) -> list[str]:
        """`dbt build` arguments: `--full-refresh` when a load emptied a day."""
        return ["--full-refresh"] if self.full_refresh else []


def rebuild_window(con: duckdb.DuckDBPyConnection) -> RebuildWindow:
    """The rebuild window of the loads that no complete dbt build has covered yet."""
    exists = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'raw' and table_name = 'load_log'"
    ).fetchone()[0]
    if not exists:
        return RebuildWindow(days=None)
    rows = con.execute(
        "select source, min(rebuild_from), bool_or(full_refresh), max(loaded_at) "
        "from raw.load_log where built_at is null group by source"
    ).fetchall()
    return RebuildWindow(
        days={s: d for s, d, _f, _t in rows if d is not None},
        full_refresh=any(f for _s, _d, f, _t in rows),
        through=max((t for *_rest, t in rows), default=None),
    )


def mark_built(con: duckdb.DuckDBPyConnection, window: RebuildWindow) -> None:
    """After a dbt build of every incremental model with `window` succeeded: its loads are
    built. (A partial or failed build marks nothing: the next window still holds them.)"""
    if window.through is None:
        return
    now = datetime.now(UTC).replace(tzinfo=None)
    con.execute(
        "update raw.load_log set built_at = ? where built_at is null and loaded_at <= ?",
        [now, window.through],
    )
    # a bounded log: built loads are kept for a while to read back, then dropped
    con.execute(
        "delete from raw.load_log where built_at < ?", [now - timedelta(days=_LOG_KEEP_DAYS)]
    )


# --------------------------------------------------------------------------------------------
# temporary folders


@contextmanager
def _load_tmp_dir(parent: Path) -> Iterator[Path]:
    """This load's temporary folder (transcoded files, sample and downloads of an in-memory
    load), locked while the load runs so that another load never takes it for stale."""
    with tempfile.TemporaryDirectory(prefix=_TMP_PREFIX, dir=parent) as tmp:
        lock = (Path(tmp) / ".lock").open("wb")
        try:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)
            yield Path(tmp)
        finally:
            lock.close()


def remove_stale_tmp(parent: Path) -> list[Path]:
    """Remove the temporary folders a killed load left in `parent`: named `crimecast-load-*`,
    unmodified for 10 minutes and not locked by a live load. Returns the folders removed."""
    removed: list[Path] = []
    cutoff = time.time() - _STALE_TMP_S
    for folder in sorted(parent.glob(_TMP_PREFIX + "*")):
        try:
            if folder.is_symlink() or not folder.is_dir() or folder.stat().st_mtime > cutoff:
                continue
        except OSError:
            continue
        if _in_use(folder):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            _log.info("removed the temporary folder of an interrupted load: %s", folder)
            removed.append(folder)
    return removed


def _in_use(folder: Path) -> bool:
    if fcntl is None:
        return False
    try:
        fh = (folder / ".lock").open("rb")
    except OSError:  # no lock file: killed before taking it (or a version without locks)
        return False
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
    return False


# --------------------------------------------------------------------------------------------
# inputs


def _database_dir(con: duckdb.DuckDBPyConnection) -> Path | None:
    row = con.execute(
        "select path from duckdb_databases() where database_name = current_database()"
    ).fetchone()
    return Path(row[0]).resolve().parent if row and row[0] else None


def _resolve(
    mapping: SourceMapping,
    specs: tuple[str, ...],
    sample_dir: Path | None,
    db_dir: Path | None,
    tmp_dir: Path,
) -> list[InputFile]:
    out: list[InputFile] = []
    base_dirs = [mapping.path.resolve().parent.parent] if mapping.path else []
    cache_dir = (db_dir / "downloads") if db_dir else tmp_dir / "downloads"
    for spec in specs:
        if spec == "sample":
            if not mapping.sample:
                raise LoadError(
                    f"source {mapping.name!r}: input is 'sample' but the mapping "
                    "has no 'sample' generator"
                )
            from samples.incidents import write_sample

            out_dir = (
                Path(sample_dir)
                if sample_dir
                else (db_dir / "sample" / mapping.name if db_dir else tmp_dir / "sample")
            )
            out += [
                InputFile(p.resolve(), str(p.resolve()))
                for p in write_sample(mapping.sample, out_dir)
            ]
            continue
        try:
            out += resolve_inputs(
                [spec], cache_dir=cache_dir, pattern=mapping.files.pattern, base_dirs=base_dirs
            )
        except FetchError as exc:
            raise LoadError(f"source {mapping.name!r}: {exc}", file=spec) from exc
    return out


class _HashCache:
    """sha256 of local input files, reused while a file keeps its size and modification time
    (raw.file_hashes; the same test make, rsync and git rely on): a daily run over 20 years of
    extracts hashes the new file, not 1.5 GB of unchanged ones. A file rewritten with the same
    size and mtime to the nanosecond would be missed; `touch` it (or delete its row of
    raw.file_hashes) to have it hashed again. Downloads are always hashed."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.known = {
            file: (size, mtime_ns, sha)
            for file, size, mtime_ns, sha in con.execute(
                "select file, size, mtime_ns, sha256 from raw.file_hashes"
            ).fetchall()
        }
        self.new: dict[str, tuple[int, int, str]] = {}

    def sha256(self, item: InputFile) -> str:
        if item.label != str(item.path):  # a download: the local path is a temporary file
            return _sha256(item)
        try:
            st = item.path.stat()  # before reading: a change while hashing shows next time
        except OSError as exc:
            raise _unreadable(item, exc) from exc
        known = self.known.get(item.label)
        if known is not None and known[:2] == (st.st_size, st.st_mtime_ns):
            return known[2]
        sha = _sha256(item)
        # a file written in the last seconds could be rewritten within the file system's
        # timestamp granularity (a few ms) without a new mtime: hash it again next time
        if time.time_ns() - st.st_mtime_ns > _SETTLED_NS:
            self.new[item.label] = (st.st_size, st.st_mtime_ns, sha)
        return sha

    def save(self) -> None:
        """Inside the load's transaction."""
        for file, (size, mtime_ns, sha) in self.new.items():
            self.con.execute("delete from raw.file_hashes where file = ?", [file])
            self.con.execute(
                "insert into raw.file_hashes values (?, ?, ?, ?)", [file, size, mtime_ns, sha]
            )


def _sha256(item: InputFile) -> str:
    h = hashlib.sha256()
    try:
        with item.path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    except OSError as exc:
        raise _unreadable(item, exc) from exc
    return h.hexdigest()


def _unreadable(item: InputFile, exc: OSError) -> LoadError:
    return LoadError(f"{item.label}: cannot read: {exc.strerror or exc}", file=item.label)


# --------------------------------------------------------------------------------------------
# per-file checks


def _bom_length(path: Path, codec: str) -> int:
    """Bytes of a UTF-8 byte-order mark at the start of the file, to skip before decoding with
    `codec`: whatever 8-bit codec decodes the rest (a file saved as "UTF-8" by one tool, then
    written in latin-1 by another keeps the mark: latin-1 would read it as `ï»¿`). UTF-16/32
    codecs handle their own marks."""
    if codec.startswith(("utf-16", "utf-32")):
        return 0
    with path.open("rb") as fh:
        return len(codecs.BOM_UTF8) if fh.read(3) == codecs.BOM_UTF8 else 0


def _detect_encoding(item: InputFile, encodings: tuple[str, ...]) -> tuple[str, int]:
    """The first encoding of the list that decodes the whole file (`utf-8-sig` reported when a
    UTF-8 file starts with a BOM), and the length of a UTF-8 BOM to skip (any 8-bit codec)."""
    first_error = ""
    _reject_nul_bytes(item, encodings)
    for enc in encodings:
        name = codecs.lookup(enc).name
        decoder = codecs.getincrementaldecoder(name)(errors="strict")
        skip = _bom_length(item.path, name)
        offset = lines = 0
        try:
            with item.path.open("rb") as fh:
                fh.seek(skip)
                offset = skip
                while chunk := fh.read(_CHUNK):
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError as exc:
                        line = lines + chunk[: exc.start].count(b"\n") + 1
                        raise _DecodeFailed(offset + exc.start, line, exc.reason) from exc
                    offset += len(chunk)
                    lines += chunk.count(b"\n")
                decoder.decode(b"", final=True)
        except _DecodeFailed as exc:
            if not first_error:
                first_error = f"as {enc}: byte offset {exc.offset} (line {exc.line}): {exc.reason}"
            continue
        except UnicodeDecodeError as exc:  # truncated multi-byte sequence at the very end
            if not first_error:
                first_error = f"as {enc}: at end of file: {exc.reason}"
            continue
        if name in _UTF8:
            return ("utf-8-sig" if skip else "utf-8"), skip
        return enc, skip
    raise LoadError(
        f"{item.label}: cannot decode with any of the mapping's encodings "
        f"({', '.join(encodings)}); first failure {first_error}",
        file=item.label,
    )


def _reject_nul_bytes(item: InputFile, encodings: tuple[str, ...]) -> None:
    """A NUL byte never occurs in a CSV text file in an 8-bit or UTF-8 encoding: the file is
    UTF-16/32 or binary. Without this, `latin-1` (which accepts every byte) would "decode" it
    into garbage headers."""
    if any(codecs.lookup(e).name.startswith(("utf-16", "utf-32")) for e in encodings):
        return
    lines = 0
    with item.path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            at = chunk.find(b"\x00")
            if at >= 0:
                line = lines + chunk[:at].count(b"\n") + 1
                utf16 = chunk.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or (
                    lines == 0 and at <= 1
                )
                if utf16:
                    hint = "UTF-16 text? add the codec to files.encodings if so"
                else:
                    hint = _magic_hint(item.path) or "not a text file: binary data?"
                raise LoadError(
                    f"{item.label}: line {line}: cannot decode with any of the mapping's "
                    f"encodings ({', '.join(encodings)}): NUL bytes ({hint})",
                    file=item.label,
                    line=line,
                )
            lines += chunk.count(b"\n")


def _magic_hint(path: Path) -> str:
    with path.open("rb") as fh:
        head = fh.read(4)
    if head.startswith(b"\x1f\x8b"):
        return "not a text file: gzip-compressed? decompress it first"
    if head.startswith(b"PK\x03\x04"):
        return "not a text file: a zip archive or an .xlsx workbook? extract or export as CSV"
    return ""


def _open_text(p: _Prepared) -> IO[str]:
    """The file as text in its detected encoding, after any UTF-8 byte-order mark."""
    fh = p.item.path.open("rb")
    fh.seek(p.bom)
    codec = "utf-8" if p.encoding in _UTF8 else codecs.lookup(p.encoding).name
    return io.TextIOWrapper(fh, encoding=codec, newline="")


def _reject_binary(p: _Prepared) -> None:
    """Random, compressed or encrypted bytes without a NUL decode as latin-1 (every byte is a
    character) into a garbled header; text has almost no control characters."""
    with _open_text(p) as fh:
        text = fh.read(_SNIFF_CHARS).lstrip("\ufeff")
    if not text:
        return
    control = sum(
        1
        for c in text
        if c == "\ufffd"
        or (c not in "\t\n\r\f\v" and unicodedata.category(c) in ("Cc", "Cn", "Co", "Cs"))
    )
    if control / len(text) > _MAX_CONTROL_SHARE:
        label = p.item.label
        hint = _magic_hint(p.item.path).removeprefix("not a text file: ")
        raise LoadError(
            f"{label}: not a text file: {control / len(text):.0%} of its first {len(text):,} "
            f"characters (read as {p.encoding}) are control characters "
            f"({hint or 'binary, compressed or encrypted data? is this the right file'})",
            file=label,
        )


class _DecodeFailed(Exception):
    def __init__(self, offset: int, line: int, reason: str) -> None:
        super().__init__(reason)
        self.offset, self.line, self.reason = offset, line, reason


def _prepare(p: _Prepared, mapping: SourceMapping, tmp_dir: Path) -> None:
    label = p.item.label
    if p.item.path.stat().st_size == 0:
        raise LoadError(f"{label}: file is empty (0 bytes)", file=label)
    p.encoding, p.bom = _detect_encoding(p.item, mapping.files.encodings)
    _reject_binary(p)
    delim, quote = mapping.files.delimiter, mapping.files.quote
    with _open_text(p) as fh:
        start = fh.tell()
        first_line = fh.readline()
        fh.seek(start)
        reader = csv.reader(fh, delimiter=delim, quotechar=quote)
        header: list[str] | None = None
        has_data = False
        try:
            for row in reader:
                if not any(c.strip() for c in row):
                    continue
                if header is None:
                    header = row
                    continue
                has_data = True
                break
        except csv.Error as exc:
            reason = _TOO_LONG if "field limit" in str(exc) else str(exc)
            raise LoadError(
                f"{label}: line {reader.line_num}: {reason}", file=label, line=reader.line_num
            ) from exc
    if header is None:
        raise LoadError(f"{label}: file is empty (no header line)", file=label)
    if not has_data:
        raise LoadError(f"{label}: file has a header but no data rows", file=label)
    header[0] = header[0].lstrip("\ufeff")  # the mark of a UTF-16-LE/BE file
    p.header = header

    normalized: dict[str, int] = {}
    for i, h in enumerate(header):
        normalized.setdefault(normalize_header(h), i)

    def find(aliases: tuple[str, ...]) -> int | None:
        for a in aliases:
            i = normalized.get(normalize_header(a))
            if i is not None:
                return i
        return None

    for name, spec in mapping.fields.items():
        p.index[name] = find(spec.columns)
    ts = mapping.timestamp
    if ts.is_date_hour:
        p.index["_date"] = find(ts.date_columns)
        p.index["_hour"] = find(ts.hour_columns) if ts.hour_columns else None
    else:
        p.index["_ts"] = find(ts.columns)

    for name in mapping.required:
        if name == "timestamp":
            parts = (
                [("date", ts.date_columns, "_date")]
                + ([("hour", ts.hour_columns, "_hour")] if ts.hour_columns else [])
                if ts.is_date_hour
                else [("timestamp", ts.columns, "_ts")]
            )
            for what, aliases, key in parts:
                if p.index[key] is None:
                    _missing(
                        label,
                        f"timestamp {what}" if what != "timestamp" else what,
                        aliases,
                        header,
                        first_line,
                        delim,
                    )
        elif p.index.get(name) is None:
            _missing(label, name, mapping.fields[name].columns, header, first_line, delim)

    if p.encoding in _UTF8:
        p.read_path = p.item.path
    else:
        p.read_path = _transcode(p, tmp_dir)


def _missing(
    label: str,
    name: str,
    aliases: tuple[str, ...],
    header: list[str],
    first_line: str,
    delim: str,
) -> None:
    shown = ", ".join(repr(h) for h in header[:30]) + (" …" if len(header) > 30 else "")
    msg = (
        f"{label}: required field {name!r} not found: none of the columns "
        f"{', '.join(repr(a) for a in aliases)} is in the header (header: {shown})"
    )
    hint = _delimiter_hint(first_line, delim)
    if hint:
        msg += f"; {hint}"
    raise LoadError(msg, file=label, line=1, column=aliases[0] if aliases else None)


def _delimiter_hint(first_line: str, delim: str) -> str:
    line = first_line.lstrip("\ufeff").rstrip("\r\n")

    def width(d: str) -> int:
        return len(next(csv.reader([line], delimiter=d), []))

    configured = width(delim)
    best = max(((width(d), d) for d in _DELIMS if d != delim), default=(0, ""))
    if best[0] >= 2 and best[0] > configured:
        return f"looks like the delimiter is {best[1]!r} not {delim!r}"
    return ""


def _transcode(p: _Prepared, tmp_dir: Path) -> Path:
    out = tmp_dir / f"{p.sha[:16]}.utf8.csv"
    with _open_text(p) as src, out.open("w", encoding="utf-8", newline="") as dst:
        first = True
        while chunk := src.read(_CHUNK):
            dst.write(chunk.lstrip("\ufeff") if first else chunk)
            first = False
    return out


# --------------------------------------------------------------------------------------------
# SQL


def _lit(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _list_lit(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(_lit(v) for v in values) + "]"


def _clean(expr: str) -> str:
    return f"nullif(trim({expr}, {_lit(_WS)}), '')"


def _timestamp_sql(p: _Prepared, mapping: SourceMapping) -> tuple[str, str]:
    """(occurred_at expression, occurred_at_raw expression) over the cleaned columns."""
    ts = mapping.timestamp
    tz = _lit(mapping.timezone)

    def to_local(expr: str) -> str:
        if ts.zone == "local" or ts.zone == mapping.timezone:
            return expr
        return f"timezone({tz}, timezone({_lit(ts.zone)}, {expr}))"

    if ts.is_date_hour:
        di, hi = p.index.get("_date"), p.index.get("_hour")
        if di is None or (ts.hour_columns and hi is None):
            return "NULL::TIMESTAMP", (f'"v{di}"' if di is not None else "NULL::VARCHAR")
        d = f'try_strptime("v{di}", {_list_lit(ts.date_formats)})'
        if hi is None:
            return to_local(d), f'"v{di}"'
        # digits only: try_cast alone rounds `7.5` to 8 and reads `0x5` as 5
        h = (
            f'CASE WHEN regexp_full_match("v{hi}", {_lit(_HOUR_RE)}) '
            f'THEN try_cast("v{hi}" AS INTEGER) END'
        )
        naive = f"CASE WHEN {h} BETWEEN 0 AND 23 THEN {d} + to_hours({h}) END"
        return to_local(naive), f'concat_ws(\' \', "v{di}", "v{hi}")'

    ti = p.index.get("_ts")
    if ti is None:
        return "NULL::TIMESTAMP", "NULL::VARCHAR"
    v = f'"v{ti}"'
    naive = [f for f in ts.formats if not re.search(r"%[zZ]", f)]
    aware = [f for f in ts.formats if re.search(r"%[zZ]", f)]
    parts = []
    if naive:
        parts.append(to_local(f"try_strptime({v}, {_list_lit(naive)})"))
    if aware:
        parts.append(f"timezone({tz}, try_strptime({v}, {_list_lit(aware)}))")
    expr = parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"
    return expr, v


def _filter_sql(mapping: SourceMapping) -> str:
    if not mapping.filters:
        return "NULL::VARCHAR"
    column = {
        "incident_id": "incident_id",
        "area": "area",
        "category": "category_raw",
        "offense_code": "offense_code",
        "offense_description": "offense_description",
        "count": "count_raw",
        "latitude": "latitude",
        "longitude": "longitude",
        "timestamp": "occurred_at_raw",
    }
    whens = []
    for f in mapping.filters:
        col = column[f.field]
        if f.op == "is_null":
            whens.append(f"WHEN {col} IS {'NOT ' if f.negate else ''}NULL THEN {_lit(f.name)}")
            continue
        if f.op == "range":  # the parsed local timestamp: since <= occurred_at < before
            since, before = f.value
            bounds = [f"occurred_at >= {_lit(since)}::TIMESTAMP"] if since else []
            bounds += [f"occurred_at < {_lit(before)}::TIMESTAMP"] if before else []
            test = " AND ".join(bounds)
        elif f.op == "matches":
            test = f"regexp_matches({col}, {_lit(f.value)})"
        elif f.op == "equals":
            test = f"{col} = {_lit(f.value)}"
        else:
            test = f"{col} IN ({', '.join(_lit(v) for v in f.value)})"
        # NULL when the value is missing: such a row never matches, negated or not
        cond = f"coalesce({'NOT ' if f.negate else ''}({test}), false)"
        whens.append(f"WHEN {cond} THEN {_lit(f.name)}")
    return "CASE " + " ".join(whens) + " END"


def _read_csv_sql(p: _Prepared, mapping: SourceMapping) -> str:
    cols = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(p.header)))
    q = mapping.files.quote
    return (
        f"read_csv({_lit(str(p.read_path))}, columns={{{cols}}}, header=true, "
        f"delim={_lit(mapping.files.delimiter)}, quote={_lit(q)}, escape={_lit(q)}, "
        "strict_mode=true, auto_detect=false, null_padding=false, ignore_errors=false, "
        f"max_line_size={_MAX_LINE_BYTES})"
    )


def _file_sql(p: _Prepared, mapping: SourceMapping, loaded_at: datetime) -> str:
    used = sorted({i for i in p.index.values() if i is not None})
    cleaned = ", ".join(f'{_clean(f"c{i}")} AS "v{i}"' for i in used)
    cleaned = (cleaned + ", ") if cleaned else ""

    def field_expr(name: str) -> str:
        i = p.index.get(name)
        if i is None:
            return "NULL::VARCHAR"
        spec = mapping.fields[name]
        if spec.regex:
            return _clean(f'regexp_extract("v{i}", {_lit(spec.regex)}, 1)')
        return f'"v{i}"'

    occurred, occurred_raw = _timestamp_sql(p, mapping)
    count_raw = field_expr("count") if "count" in mapping.fields else "NULL::VARCHAR"
    return f"""
insert into raw.incidents (
    source, incident_id, occurred_at, occurred_at_raw, area, category_raw, offense_code,
    offense_description, incident_count, filter_reason, source_file, source_sha256, source_row,
    loaded_at, latitude, longitude
)
select {_lit(mapping.name)}, incident_id, occurred_at, occurred_at_raw, area, category_raw,
       offense_code, offense_description,
       CASE WHEN count_raw IS NULL THEN 1
            WHEN regexp_full_match(count_raw, {_lit(_COUNT_RE)})
            THEN try_cast(count_raw AS INTEGER) END,
       {_filter_sql(mapping)},
       {_lit(p.item.label)}, {_lit(p.sha)}, source_row, {_lit(loaded_at.isoformat())}::TIMESTAMP,
       latitude, longitude
from (
    select {field_expr("incident_id")} AS incident_id,
           {occurred} AS occurred_at,
           {occurred_raw} AS occurred_at_raw,
           {field_expr("area")} AS area,
           {field_expr("category")} AS category_raw,
           {field_expr("offense_code")} AS offense_code,
           {field_expr("offense_description")} AS offense_description,
           {count_raw} AS count_raw,
           {field_expr("latitude")} AS latitude,
           {field_expr("longitude")} AS longitude,
           source_row
    from (
        select {cleaned}row_number() over () AS source_row
        from {_read_csv_sql(p, mapping)}
    )
)
"""


_CSV_LINE = re.compile(r"CSV Error on Line: (\d+)")
_TOO_LONG = (
    f"a field is longer than the {_MAX_LINE_BYTES // 1_000_000} MB the loader reads; "
    "is this the right file?"
)


def _csv_error(p: _Prepared, exc: duckdb.Error, delim: str) -> LoadError:
    text = str(exc)
    label = p.item.label
    m = _CSV_LINE.search(text)
    if not m:
        first = text.strip().split("\n")[0]
        return LoadError(f"{label}: cannot read as CSV: {first}", file=label)
    line = int(m.group(1))
    if "Maximum line size" in text:  # DuckDB's advice (max_line_size) is not the user's fix
        return LoadError(f"{label}: line {line}: {_TOO_LONG}", file=label, line=line)
    body = text[m.end() :].split("Possible fixes")[0]
    original = ""
    om = re.search(r"Original Line: (.*)", body)
    if om:
        original = om.group(1).strip()
        body = body.replace(om.group(0), "")
    reason = " ".join(body.split()) or "malformed row"
    cm = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", reason)
    if cm:
        exp, got = int(cm.group(1)), int(cm.group(2))
        kind = "truncated row" if got < exp else "row has extra fields"
        reason = f"{kind}: expected {exp} columns (as in the header), found {got}"
        hint = _delimiter_hint(original, delim) if got == 1 else ""
        if hint:
            reason += f"; {hint}"
    elif "unterminated quote" in reason.lower():
        reason = "unterminated quoted field (truncated file?)"
    if len(original) > 200:
        original = original[:200] + "…"
    msg = f"{label}: line {line}: {reason}"
    if original:
        msg += f" — line reads: {original}"
    return LoadError(msg, file=label, line=line)


def _insert_file(
    con: duckdb.DuckDBPyConnection, p: _Prepared, mapping: SourceMapping, loaded_at: datetime
) -> int:
    label = p.item.label
    try:
        n = _count(con, _file_sql(p, mapping, loaded_at))
    except duckdb.Error as exc:
        raise _csv_error(p, exc, mapping.files.delimiter) from exc
    if n == 0:
        raise LoadError(f"{label}: file has a header but no data rows", file=label)
    if "count" in mapping.fields and p.index.get("count") is not None:
        bad = con.execute(
            "select source_row from raw.incidents where source = ? and source_sha256 = ? "
            "and incident_count is null order by source_row limit 1",
            [mapping.name, p.sha],
        ).fetchone()
        if bad:
            raise _bad_count(con, p, mapping, int(bad[0]))
    return n


def _bad_count(
    con: duckdb.DuckDBPyConnection, p: _Prepared, mapping: SourceMapping, row: int
) -> LoadError:
    """The error for data row `row`, whose count is not a whole decimal number (error path
    only: the file is read again for the value and the line of that row)."""
    i = p.index["count"]
    column = p.header[i]
    value = con.execute(
        f"select {_clean(f'c{i}')} from (select c{i}, row_number() over () AS r "
        f"from {_read_csv_sql(p, mapping)}) where r = ?",
        [row],
    ).fetchone()[0]
    line = _line_of_row(p, mapping, row)
    why = (
        "is out of range"
        if re.fullmatch(_COUNT_RE, value or "")
        else "is not a whole number (digits with an optional sign, e.g. 2 or -1)"
    )
    return LoadError(
        f"{p.item.label}: line {line} (data row {row}), column {column!r}: count {value!r} {why}",
        file=p.item.label,
        line=line,
        column=column,
    )


def _line_of_row(p: _Prepared, mapping: SourceMapping, row: int) -> int:
    """1-based line of the file where data row `row` starts."""
    path = Path(p.read_path or p.item.path)
    return line_of_row(path, mapping.files.delimiter, row, mapping.files.quote)


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> int:
    row = con.execute(sql, params or []).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


@contextmanager
def _no_progress_bar(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """DuckDB draws a progress bar on stderr for long queries: noise in Dagster logs."""
    before = con.execute("select current_setting('enable_progress_bar')").fetchone()[0]
    con.execute("set enable_progress_bar = false")
    try:
        yield
    finally:
        con.execute(f"set enable_progress_bar = {'true' if before else 'false'}")


def _summarise(con: duckdb.DuckDBPyConnection, result: LoadResult) -> None:
    total, unparseable, lo, hi = con.execute(
        "select count(*), count(*) filter (where occurred_at is null), min(occurred_at), "
        "max(occurred_at) from raw.incidents where source = ?",
        [result.source],
    ).fetchone()
    result.rows_total = int(total)
    result.rows_unparseable_timestamp = int(unparseable)
    result.min_occurred_at, result.max_occurred_at = lo, hi
    result.rows_flagged = dict(
        con.execute(
            "select filter_reason, count(*) from raw.incidents where source = ? "
            "and filter_reason is not null group by 1 order by 1",
            [result.source],
        ).fetchall()
    )


__all__ = [
    "DDL",
    "LoadError",
    "LoadResult",
    "RebuildWindow",
    "load_source",
    "mark_built",
    "rebuild_window",
]
