"""Loader for the São Paulo mobile-phone robbery/theft records (SSP-SP, derived extract).

One CSV row per robbery or theft: BAIRRO, MARCA_OBJETO, DIA_SEMANA, PERIODO, IDADE, SEXO,
RUBRICA, DESCR_SUBTIPOLOCAL (see ../shared/data/README.md). Python checks each file and its
header (:mod:`ingest.csv_files`); DuckDB's ``read_csv`` parses the rows, written to
``raw.saopaulo_phone_thefts`` (every data row, values as published, trimmed, '' → NULL) and
``raw.saopaulo_source_files`` in ONE DuckDB transaction. A file-level problem (empty file,
wrong delimiter, missing required columns, undecodable bytes, a truncated row) raises
:class:`SaoPauloLoadError` naming the file (and line where known) and rolls back, so the
warehouse is unchanged.

Inputs (``spec``): a file, a folder (its ``*.csv`` files), a glob, an http(s) URL (resolved by
the shared :mod:`ingest.fetch`), or ``sample`` / None (the deterministic
generator in :mod:`samples.saopaulo`). Several files are concatenated; the table
is replaced by each load (mirror semantics).

Tolerated variations, so that a user's own SSP download also loads: ``,`` or ``;`` delimiter;
UTF-8 (with or without BOM), UTF-16 (with BOM) or CP1252; header names compared case- and
accent-insensitively, with the SSP's long names accepted as aliases (PERIODOOCORRENCIA for
PERIODO, DESCR_SUBTIPOLOCAL required). IDADE and SEXO are optional (NULL when absent): they are
random in the derived extract and the model does not use them.
"""

from __future__ import annotations

import tempfile
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from ingest.csv_files import (
    WHITESPACE,
    CsvLoadError,
    TextFile,
    header_fields,
    read_rows,
    read_text,
    resolve,
    shown,
    sql_literal,
    transaction,
    utf8_copy,
)

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
_ENCODINGS = ("utf-16", "utf-8", "cp1252")


class SaoPauloLoadError(CsvLoadError):
    """A São Paulo file cannot be loaded; the message names the file and the problem."""


def _norm_header(name: str) -> str:
    text = unicodedata.normalize("NFKD", name.strip().strip('"').lstrip("\ufeff"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).upper()
    return "".join(ch for ch in text if ch.isalnum())


@dataclass
class CheckedFile:
    """A file whose encoding and header passed: its delimiter, and the header field of each
    raw column (``index``; an optional column may be absent)."""

    text: TextFile
    delimiter: str
    fields: int
    index: dict[str, int]

    @property
    def name(self) -> str:
        return self.text.name


def check_file(path: str | Path, name: str | None = None) -> CheckedFile:
    """Check one file before DuckDB reads it; ``name`` (path or URL) is used in messages."""
    name = name or str(path)
    text = read_text(Path(path), name, _ENCODINGS, SaoPauloLoadError)
    if text.encoding is None:
        if text.tried == ("utf-16",):  # a UTF-16 byte-order mark
            raise SaoPauloLoadError(f"{name}: unreadable UTF-16 text")
        raise SaoPauloLoadError(
            f"{name}: unreadable encoding (byte {text.bad_byte} is neither UTF-8 nor CP1252)"
        )
    control = text.control_character()
    if control:
        raise SaoPauloLoadError(
            f"{name}: not a text file ({control} after decoding as {text.encoding})"
        )
    header_line = text.first_line
    if not header_line.strip():
        raise SaoPauloLoadError(f"{name}: line 1: empty header")

    # Choose the delimiter that makes the header hold the required columns.
    found = {d: [_norm_header(h) for h in header_fields(header_line, d)] for d in _DELIMITERS}
    delimiter, keys = max(
        found.items(),
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
            f"(found: {shown(', '.join(header_line.split(delimiter)), 200)})"
        )
    return CheckedFile(text=text, delimiter=delimiter, fields=len(keys), index=index)


def resolve_files(spec: str, download_dir: Path) -> list[tuple[Path, str]]:
    """(local path, name to report) for every file of ``spec`` (file, folder, glob, URL)."""
    return [(f.path, f.label) for f in resolve(spec, download_dir, "*.csv", SaoPauloLoadError)]


def _insert_file(
    con: duckdb.DuckDBPyConnection, f: CheckedFile, path: Path, loaded_at: datetime
) -> int:
    values = ", ".join(
        f"nullif(trim(c{f.index[c]}, {sql_literal(WHITESPACE)}), '')"
        if c in f.index
        else "NULL::varchar"
        for c in COLUMNS
    )
    n = read_rows(
        con,
        f"insert into raw.{TABLE}",
        f"{values}, ?, ?, source_row, ?",
        f.text,
        path,
        {f"c{i}": "VARCHAR" for i in range(f.fields)},
        delimiter=f.delimiter,
        error=SaoPauloLoadError,
        params=[f.name, f.text.sha256, loaded_at],
    )
    con.execute(
        f"insert into raw.{FILES_TABLE} values (?, ?, ?, ?, ?, ?)",
        [f.name, f.text.sha256, f.text.encoding, f.delimiter, n, loaded_at],
    )
    return n


def write_files(con: duckdb.DuckDBPyConnection, files: list[CheckedFile]) -> int:
    """Replace raw.saopaulo_phone_thefts and raw.saopaulo_source_files with every checked
    file's rows (in file name order), parsed by DuckDB in one transaction; returns the rows."""
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    columns = ", ".join(f"{c} VARCHAR" for c in COLUMNS)
    total = 0
    with tempfile.TemporaryDirectory(prefix="crimecast-saopaulo-") as tmp, transaction(con):
        con.execute("create schema if not exists raw")
        con.execute(
            f"create or replace table raw.{TABLE} ({columns}, source_file VARCHAR, "
            "source_sha256 VARCHAR, source_row BIGINT, loaded_at TIMESTAMP)"
        )
        con.execute(
            f"create or replace table raw.{FILES_TABLE} (source_file VARCHAR, "
            "source_sha256 VARCHAR, encoding VARCHAR, delimiter VARCHAR, rows BIGINT, "
            "loaded_at TIMESTAMP)"
        )
        for f in sorted(files, key=lambda f: f.name):
            total += _insert_file(con, f, utf8_copy(f.text, Path(tmp)), loaded_at)
    return total


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
    checked, then parsed and written in one transaction; any error leaves the warehouse as
    it was."""
    if spec is None or spec.strip().lower() == "sample":
        from samples.saopaulo import write_sample

        path = write_sample(sample_dir)
        inputs = [(path, str(path))]
    else:
        inputs = resolve_files(spec.strip(), download_dir)
    checked = [check_file(path, name) for path, name in inputs]
    rows = write_files(con, checked)
    return SaoPauloLoadResult(
        files=[f.name for f in checked], sha256=[f.text.sha256 for f in checked], rows=rows
    )
