"""Loader for the São Paulo mobile-phone robbery/theft records (SSP-SP, derived extract).

One CSV row per robbery or theft: BAIRRO, MARCA_OBJETO, DIA_SEMANA, PERIODO, IDADE, SEXO,
RUBRICA, DESCR_SUBTIPOLOCAL (see ../shared/data/README.md). The loader parses strictly and
writes ``raw.saopaulo_phone_thefts`` (every data row, values as published, trimmed, '' → NULL)
and ``raw.saopaulo_source_files`` in ONE DuckDB transaction. A file-level problem (empty file,
wrong delimiter, missing required columns, undecodable bytes, a truncated row) raises
:class:`SaoPauloLoadError` naming the file (and line where known) before anything is written,
so the warehouse is unchanged.

Inputs (``spec``): a file, a folder (its ``*.csv`` files), a glob, an http(s) URL (resolved by
the shared :mod:`ingest.fetch`), or ``sample`` / None (the deterministic
generator in :mod:`samples.saopaulo`). Several files are concatenated; the table
is replaced by each load (mirror semantics).

Tolerated variations, so that a user's own SSP download also loads: ``,`` or ``;`` delimiter;
UTF-8 (with or without BOM) or Latin-1/CP1252; header names compared case- and
accent-insensitively, with the SSP's long names accepted as aliases (PERIODOOCORRENCIA for
PERIODO, DESCR_SUBTIPOLOCAL required). IDADE and SEXO are optional (NULL when absent): they are
random in the derived extract and the model does not use them.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from ingest.csv_limits import MAX_FIELD_CHARS
from ingest.fetch import FetchError, resolve_inputs

TABLE = "saopaulo_phone_thefts"
FILES_TABLE = "saopaulo_source_files"

#: raw column → accepted header names (normalized: upper case, no accents, no spaces/_).
COLUMNS: dict[str, tuple[str, ...]] = {
    "bairro": ("BAIRRO",),
    "marca_objeto": ("MARCAOBJETO", "MARCA"),
    "dia_semana": ("DIASEMANA",),
    "periodo": ("PERIODO", "PERIODOOCORRENCIA"),
    "idade": ("IDADE", "IDADEPESSOA"),
    "sexo": ("SEXO", "SEXOPESSOA"),
    "rubrica": ("RUBRICA",),
    "descr_subtipolocal": ("DESCRSUBTIPOLOCAL",),
}
REQUIRED = ["bairro", "marca_objeto", "dia_semana", "periodo", "rubrica", "descr_subtipolocal"]
OPTIONAL = ["idade", "sexo"]
_DELIMITERS = (",", ";")


class SaoPauloLoadError(ValueError):
    """A São Paulo file cannot be loaded; the message names the file and the problem."""


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


def _norm_header(name: str) -> str:
    text = unicodedata.normalize("NFKD", name.strip().strip('"').lstrip("\ufeff"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).upper()
    return "".join(ch for ch in text if ch.isalnum())


@dataclass
class ParsedFile:
    name: str
    sha256: str
    encoding: str
    delimiter: str
    frame: pd.DataFrame

    @property
    def rows(self) -> int:
        return len(self.frame)


def _decode(data: bytes, name: str) -> tuple[str, str]:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise SaoPauloLoadError(f"{name}: unreadable UTF-16 text") from None
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        raise SaoPauloLoadError(
            f"{name}: unreadable encoding (byte {exc.start} is neither UTF-8 nor CP1252)"
        ) from None


def parse_bytes(data: bytes, name: str) -> ParsedFile:
    """Parse one file's bytes; ``name`` (path or URL) is used in every error message."""
    sha = hashlib.sha256(data).hexdigest()
    if not data.strip():
        raise SaoPauloLoadError(f"{name}: empty file")
    text, encoding = _decode(data, name)
    text = text.lstrip("\ufeff")
    control = _control_character(text)
    if control is not None:
        raise SaoPauloLoadError(
            f"{name}: not a text file (character {control}: control character "
            f"{ord(text[control]):#04x} after decoding as {encoding})"
        )
    header_line = text.splitlines()[0] if text.strip() else ""
    if not header_line.strip():
        raise SaoPauloLoadError(f"{name}: line 1: empty header")

    # Choose the delimiter that makes the header hold the required columns.
    found: dict[str, tuple[str, list[str]]] = {}
    for delim in _DELIMITERS:
        names = [_norm_header(h) for h in next(csv.reader([header_line], delimiter=delim))]
        found[delim] = (delim, names)
    delimiter, keys = max(
        found.values(),
        key=lambda item: sum(any(a in item[1] for a in COLUMNS[c]) for c in REQUIRED),
    )
    index: dict[str, int] = {}
    for col, aliases in COLUMNS.items():
        for alias in aliases:
            if alias in keys:
                index[col] = keys.index(alias)
                break
    missing = [c.upper() for c in REQUIRED if c not in index]
    if missing:
        if len(keys) == 1:
            other = next((d for d in ("\t", "|", ":") if d in header_line), None)
            what = f"separated by {other!r}" if other else "a single column"
            raise SaoPauloLoadError(
                f"{name}: wrong delimiter: the header is {what}; expected ',' or ';' "
                f"with columns {', '.join(c.upper() for c in REQUIRED)}"
            )
        raise SaoPauloLoadError(
            f"{name}: missing column(s) {', '.join(missing)} "
            f"(found: {_shown(', '.join(header_line.split(delimiter)), 200)})"
        )

    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    columns: dict[str, list] = {c: [] for c in COLUMNS}
    rows: list[int] = []
    try:
        header = next(reader)
        for record in reader:
            line = reader.line_num
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # blank line (e.g. a trailing newline)
            if len(record) != len(header):
                raise SaoPauloLoadError(
                    f"{name}: line {line}: expected {len(header)} fields, found {len(record)} "
                    "(truncated or malformed row)"
                )
            for col in COLUMNS:
                i = index.get(col)
                value = record[i].strip() if i is not None else ""
                columns[col].append(value or None)
            rows.append(len(rows) + 1)
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise SaoPauloLoadError(
                f"{name}: line {reader.line_num}: a field is longer than "
                f"{MAX_FIELD_CHARS:,} characters (an unclosed quote, or not this file?)"
            ) from None
        raise SaoPauloLoadError(f"{name}: line {reader.line_num}: malformed CSV: {exc}") from None
    if not rows:
        raise SaoPauloLoadError(f"{name}: empty file (a header but no data rows)")
    frame = pd.DataFrame(columns, dtype="object")
    frame["source_row"] = rows
    return ParsedFile(name=name, sha256=sha, encoding=encoding, delimiter=delimiter, frame=frame)


def parse_file(path: str | os.PathLike[str], name: str | None = None) -> ParsedFile:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SaoPauloLoadError(f"{name or path}: cannot read: {exc}") from None
    return parse_bytes(data, name or str(path))


def resolve(spec: str, download_dir: Path) -> list[tuple[Path, str]]:
    """(local path, name to report) for every file of ``spec`` (file, folder, glob, URL)."""
    try:
        found = resolve_inputs([spec], cache_dir=download_dir, pattern="*.csv")
    except FetchError as exc:
        raise SaoPauloLoadError(f"{spec}: {exc}") from None
    return [(f.path, f.label) for f in found]


def write_parsed(con: duckdb.DuckDBPyConnection, parsed: list[ParsedFile]) -> None:
    """Replace raw.saopaulo_phone_thefts and raw.saopaulo_source_files in one transaction."""
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    frames = []
    for p in parsed:
        f = p.frame.copy()
        f["source_file"] = p.name
        f["source_sha256"] = p.sha256
        frames.append(f)
    data = pd.concat(frames, ignore_index=True)
    files = pd.DataFrame(
        {
            "source_file": [p.name for p in parsed],
            "source_sha256": [p.sha256 for p in parsed],
            "encoding": [p.encoding for p in parsed],
            "delimiter": [p.delimiter for p in parsed],
            "rows": [p.rows for p in parsed],
        }
    )
    select = ",\n  ".join(f"cast({c} as varchar) as {c}" for c in COLUMNS)
    con.execute("begin transaction")
    try:
        con.execute("create schema if not exists raw")
        con.register("_saopaulo_df", data)
        con.register("_saopaulo_files_df", files)
        con.execute(
            f"create or replace table raw.{TABLE} as select\n  {select},\n"
            "  cast(source_file as varchar) as source_file,\n"
            "  cast(source_sha256 as varchar) as source_sha256,\n"
            "  cast(source_row as bigint) as source_row, ?::timestamp as loaded_at\n"
            "from _saopaulo_df order by source_file, source_row",
            [loaded_at],
        )
        con.execute(
            f"create or replace table raw.{FILES_TABLE} as select source_file, source_sha256, "
            "encoding, delimiter, cast(rows as bigint) as rows, ?::timestamp as loaded_at "
            "from _saopaulo_files_df",
            [loaded_at],
        )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    finally:
        for view in ("_saopaulo_df", "_saopaulo_files_df"):
            with contextlib.suppress(Exception):  # best-effort clean-up
                con.unregister(view)


@dataclass
class SaoPauloLoadResult:
    files: list[str]
    sha256: list[str]
    rows: int

    def to_metadata(self) -> dict:
        return {
            "files": self.files,
            "sha256": [s[:12] for s in self.sha256],
            "rows": self.rows,
        }


def load_saopaulo(
    con: duckdb.DuckDBPyConnection,
    spec: str | None,
    *,
    sample_dir: Path,
    download_dir: Path,
) -> SaoPauloLoadResult:
    """Load ``spec`` (None or ``sample`` = the generated sample). Every file is resolved and
    parsed before anything is written; any error leaves the warehouse as it was."""
    if spec is None or spec.strip().lower() == "sample":
        from samples.saopaulo import write_sample

        path = write_sample(sample_dir)
        inputs = [(path, str(path))]
    else:
        inputs = resolve(spec.strip(), download_dir)
    parsed = [parse_file(path, name) for path, name in inputs]
    write_parsed(con, parsed)
    return SaoPauloLoadResult(
        files=[p.name for p in parsed],
        sha256=[p.sha256 for p in parsed],
        rows=sum(p.rows for p in parsed),
    )
