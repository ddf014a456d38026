"""Loader for the SSMSI recorded-crime files (data.gouv.fr): regional and departmental.

The files are `;`-separated, UTF-8 with a byte-order mark, every field quoted, with a decimal
comma in ``taux_pour_mille``. This module parses them strictly and writes one raw table per
file kind, ``raw.france_regional`` and ``raw.france_departmental``, in ONE DuckDB transaction:
a file-level problem (empty file, wrong delimiter, missing columns, a truncated row, an
unparseable number) raises :class:`FranceLoadError` naming the file (and the line and column
where known) before anything is written, so the warehouse is unchanged.

Inputs (``spec``): a file, a folder (the newest ``donnee-reg*`` / ``donnee-dep*`` CSV in it),
a glob, an http(s) URL, or ``sample`` (the deterministic generator in
:mod:`samples.france`). The published columns keep their names, lower-cased.
"""

from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from ingest.csv_limits import MAX_FIELD_CHARS
from ingest.fetch import FetchError, resolve_inputs

KINDS = ("regional", "departmental")

_COMMON = [
    "code_region",
    "annee",
    "indicateur",
    "unite_de_compte",
    "nombre",
    "taux_pour_mille",
    "insee_pop",
    "insee_pop_millesime",
    "insee_log",
    "insee_log_millesime",
]
#: Published columns per file kind (compared case-insensitively; extra columns are ignored).
REQUIRED_COLUMNS: dict[str, list[str]] = {
    "regional": _COMMON,
    "departmental": ["code_departement", *_COMMON],
}
_PATTERN = {"regional": "donnee-reg*", "departmental": "donnee-dep*"}
_TEXT = {"code_region", "code_departement", "indicateur", "unite_de_compte"}
_INTEGER = {
    "annee",
    "nombre",
    "insee_pop",
    "insee_pop_millesime",
    "insee_log",
    "insee_log_millesime",
}
_DECIMAL = {"taux_pour_mille"}
#: Values read as "no value" in numeric columns (the SSMSI writes NA for statistical secrecy
#: in its finer files). ``annee`` must always be present.
_MISSING = {"", "NA", "N/A", "nd"}
_NOT_NULL = {"annee", "indicateur", "unite_de_compte", "code_region", "code_departement"}


class FranceLoadError(ValueError):
    """A France file cannot be loaded; the message names the file and the problem."""


def _shown(text: str, limit: int = 60) -> str:
    """``text`` quoted for a one-line message, cut after ``limit`` characters (a 3 MB field or
    a garbled header must not flood the message)."""
    text = " ".join(str(text).split())
    return repr(text if len(text) <= limit else text[:limit] + f"… ({len(text):,} characters)")


def _control_character(text: str) -> int | None:
    """Offset of the first control character (other than tab, CR, LF, FF) in the first 4 KB:
    a sign of a binary file, whatever its bytes decoded to."""
    for i, ch in enumerate(text[:4096]):
        if ch < " " and ch not in "\t\r\n\f":
            return i
    return None


def table_name(kind: str) -> str:
    _check_kind(kind)
    return f"france_{kind}"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown France file kind {kind!r}; expected one of {KINDS}")


# --------------------------------------------------------------------------- input resolution


def resolve_input(kind: str, spec: str, download_dir: Path) -> tuple[Path, str]:
    """Resolve ``spec`` to one local file for ``kind``: (local path, name to report).

    Uses the shared resolver (:mod:`ingest.fetch`: file, folder, glob, http(s)
    URL with a download cache). A folder contributes its ``donnee-reg*.csv`` (regional) or
    ``donnee-dep*.csv`` (departmental) files; a glob covering both kinds keeps this kind's
    files. When several files remain, the last by name is used: the SSMSI names end in the
    production date, so that is the newest release.
    """
    _check_kind(kind)
    try:
        found = resolve_inputs([spec], cache_dir=download_dir, pattern=_PATTERN[kind] + ".csv")
    except FetchError as exc:
        raise FranceLoadError(f"{spec}: {exc}") from None
    if len(found) > 1:
        mine = [f for f in found if fnmatch.fnmatch(f.path.name, _PATTERN[kind] + "*")]
        found = sorted(mine or found, key=lambda f: f.path.name)
    return found[-1].path, found[-1].label


# --------------------------------------------------------------------------- parsing


@dataclass
class ParsedFile:
    kind: str
    name: str
    sha256: str
    frame: pd.DataFrame
    years: tuple[int, int] = field(default=(0, 0))

    @property
    def rows(self) -> int:
        return len(self.frame)


def _number(value: str, column: str, name: str, line: int) -> int | float | None:
    text = value.strip()
    if text in _MISSING:
        if column in _NOT_NULL:
            raise FranceLoadError(f"{name}: line {line}, column '{column}': value is missing")
        return None
    try:
        if column in _DECIMAL:
            # Decimal comma as published; a decimal point is accepted too. No thousands marks.
            if text.count(",") > 1 or ("," in text and "." in text):
                raise ValueError(text)
            return float(text.replace(",", "."))
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError(text)
        return int(text)
    except ValueError:
        raise FranceLoadError(
            f"{name}: line {line}, column '{column}': cannot parse {_shown(value)} as a number"
        ) from None


def parse_bytes(data: bytes, kind: str, name: str) -> ParsedFile:
    """Parse one published file (bytes) of ``kind``; ``name`` is used in error messages."""
    _check_kind(kind)
    sha = hashlib.sha256(data).hexdigest()
    if not data.strip():
        raise FranceLoadError(f"{name}: empty file")
    try:
        text = data.decode("utf-8-sig")  # strips the byte-order mark when present
    except UnicodeDecodeError as exc:
        raise FranceLoadError(
            f"{name}: not UTF-8 (byte {exc.start}): the SSMSI files are UTF-8 with a BOM"
        ) from None
    text = text.lstrip("\ufeff")
    control = _control_character(text)
    if control is not None:
        raise FranceLoadError(
            f"{name}: not a text file (character {control}: control character "
            f"{ord(text[control]):#04x}): the SSMSI files are UTF-8 CSV"
        )
    header_line = text.splitlines()[0] if text.strip() else ""
    if ";" not in header_line:
        other = next((d for d in (",", "\t", "|") if d in header_line), None)
        what = f"separated by {other!r}" if other else "not separated by ';'"
        raise FranceLoadError(f"{name}: wrong delimiter: the header is {what}; expected ';'")

    reader = csv.reader(io.StringIO(text, newline=""), delimiter=";", quotechar='"', strict=True)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise FranceLoadError(f"{name}: line 1: malformed header: {exc}") from None
    keys = [h.strip().lower() for h in header]
    required = REQUIRED_COLUMNS[kind]
    missing = [c for c in required if c not in keys]
    if missing:
        raise FranceLoadError(
            f"{name}: missing column(s) {', '.join(missing)} for the {kind} file "
            f"(found: {_shown(', '.join(h.strip() for h in header), 200)})"
        )
    if kind == "regional" and "code_departement" in keys:
        raise FranceLoadError(
            f"{name}: has a Code_departement column: this is the departmental file, "
            "not the regional one"
        )
    index = {c: keys.index(c) for c in required}
    columns: dict[str, list] = {c: [] for c in required}
    rows: list[int] = []
    try:
        for record in reader:
            line = reader.line_num
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # blank line (e.g. a trailing newline)
            if len(record) != len(header):
                raise FranceLoadError(
                    f"{name}: line {line}: expected {len(header)} fields, found {len(record)} "
                    "(truncated or malformed row)"
                )
            for col, i in index.items():
                raw = record[i]
                if col in _TEXT:
                    val = raw.strip()
                    if not val and col in _NOT_NULL:
                        raise FranceLoadError(
                            f"{name}: line {line}, column '{col}': value is missing"
                        )
                    columns[col].append(val or None)
                else:
                    columns[col].append(_number(raw, col, name, line))
            rows.append(len(rows) + 1)
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise FranceLoadError(
                f"{name}: line {reader.line_num}: a field is longer than "
                f"{MAX_FIELD_CHARS:,} characters (an unclosed quote, or not this file?)"
            ) from None
        raise FranceLoadError(f"{name}: line {reader.line_num}: malformed CSV: {exc}") from None
    if not rows:
        raise FranceLoadError(f"{name}: empty file (a header but no data rows)")

    frame = pd.DataFrame(columns)
    for col in _INTEGER:
        frame[col] = pd.array(frame[col], dtype="Int64")
    frame["taux_pour_mille"] = pd.array(frame["taux_pour_mille"], dtype="Float64")
    frame["source_row"] = rows
    years = (int(frame["annee"].min()), int(frame["annee"].max()))
    return ParsedFile(kind=kind, name=name, sha256=sha, frame=frame, years=years)


def parse_file(path: str | os.PathLike[str], kind: str, name: str | None = None) -> ParsedFile:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FranceLoadError(f"{name or path}: cannot read: {exc}") from None
    return parse_bytes(data, kind, name or str(path))


# --------------------------------------------------------------------------- writing


def _sql_type(col: str) -> str:
    if col in _INTEGER:
        return (
            "INTEGER"
            if col in {"annee", "insee_pop_millesime", "insee_log_millesime"}
            else "BIGINT"
        )
    if col in _DECIMAL:
        return "DOUBLE"
    return "VARCHAR"


def write_parsed(con: duckdb.DuckDBPyConnection, parsed: list[ParsedFile]) -> None:
    """Replace ``raw.france_<kind>`` for every parsed file, all in one transaction."""
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    con.execute("begin transaction")
    try:
        con.execute("create schema if not exists raw")
        for p in parsed:
            cols = REQUIRED_COLUMNS[p.kind]
            view = f"_france_{p.kind}_df"
            con.register(view, p.frame)
            select = ",\n  ".join(f"cast({c} as {_sql_type(c)}) as {c}" for c in cols)
            con.execute(
                f"create or replace table raw.{table_name(p.kind)} as select\n  {select},\n"
                "  ? ::varchar as source_file, ? ::varchar as source_sha256,\n"
                "  cast(source_row as bigint) as source_row, ? ::timestamp as loaded_at\n"
                f"from {view} order by source_row",
                [p.name, p.sha256, loaded_at],
            )
            con.unregister(view)
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise


@dataclass
class FranceLoadResult:
    kind: str
    source_file: str
    sha256: str
    rows: int
    years: tuple[int, int]

    def to_metadata(self) -> dict:
        return {
            "source_file": self.source_file,
            "sha256": self.sha256[:12],
            "rows": self.rows,
            "years": f"{self.years[0]}–{self.years[1]}",
        }


def load_france(
    con: duckdb.DuckDBPyConnection,
    specs: dict[str, str | None],
    *,
    sample_dir: Path,
    download_dir: Path,
) -> list[FranceLoadResult]:
    """Load the files named by ``specs`` ({kind: spec}; None or ``sample`` = generated sample).

    Every file is resolved and parsed first; only then are the tables written, in one
    transaction. Any error leaves the warehouse as it was.
    """
    parsed: list[ParsedFile] = []
    for kind, spec in specs.items():
        _check_kind(kind)
        if spec is None or spec.strip().lower() == "sample":
            from samples.france import write_sample

            paths = write_sample(sample_dir)
            path, name = paths[kind], str(paths[kind])
        else:
            path, name = resolve_input(kind, spec.strip(), download_dir)
        parsed.append(parse_file(path, kind, name))
    write_parsed(con, parsed)
    return [FranceLoadResult(p.kind, p.name, p.sha256, p.rows, p.years) for p in parsed]


def input_specs(input_for) -> dict[str, str | None]:
    """Per kind: ``CRIMECAST_INPUT_FRANCE_REGIONAL`` / ``..._DEPARTMENTAL``, else
    ``CRIMECAST_INPUT_FRANCE`` (a folder or glob holding both files), else the sample."""
    common = input_for("france")
    return {kind: input_for(f"france_{kind}") or common for kind in KINDS}
