"""What the France and São Paulo file loaders share.

Python checks only what DuckDB's own messages would not say well: an empty or binary file, its
encoding, its header. DuckDB's ``read_csv`` parses and types the rows (strict mode, explicit
column types, ``store_rejects``), and the first row of its rejects table becomes the one-line
message naming the file, the line and the column. Every message starts with the file's name.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ingest.csv_limits import MAX_FIELD_CHARS
from ingest.fetch import FetchError, InputFile, resolve_inputs

_CHUNK = 1 << 20
_HEAD_CHARS = 4096
#: trimmed from every value (the csv module's strip() of the earlier parsers, in SQL)
WHITESPACE = " \t\r\n\u00a0"
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_CODEC = {"utf-8": "utf-8-sig", "utf-16": "utf-16"}  # reported name → Python codec
#: on one line, the error a user should fix first
_REJECT_ORDER = (
    "LINE SIZE OVER MAXIMUM",
    "INVALID ENCODING",
    "UNQUOTED VALUE",
    "MISSING COLUMNS",
    "TOO MANY COLUMNS",
    "CAST",
)


class CsvLoadError(ValueError):
    """A file cannot be loaded: a one-line message naming the file (and line, column where
    known). Nothing was written."""


def shown(text: str, limit: int = 60) -> str:
    """``text`` quoted for a one-line message, cut after ``limit`` characters (a 3 MB field or
    a garbled header must not flood the message)."""
    text = " ".join(str(text).split())
    return repr(text if len(text) <= limit else text[:limit] + f"… ({len(text):,} characters)")


def sql_literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def resolve(
    spec: str, download_dir: Path, pattern: str, error: type[CsvLoadError]
) -> list[InputFile]:
    """The files of ``spec`` (file, folder, glob, http(s) URL; :mod:`ingest.fetch`)."""
    try:
        return resolve_inputs([spec], cache_dir=download_dir, pattern=pattern)
    except FetchError as exc:
        raise error(f"{spec}: {exc}") from None


# --------------------------------------------------------------------------------------------
# Python checks


@dataclass
class TextFile:
    """A file as Python checked it: hashed, its encoding chosen, its first characters kept."""

    path: Path
    name: str
    sha256: str
    #: the first of the candidates that decodes every byte; None when none does
    encoding: str | None
    #: the candidates tried (``utf-16`` alone after its byte-order mark, else the others)
    tried: tuple[str, ...]
    #: with ``encoding`` None: the byte offset where the first candidate failed
    bad_byte: int
    #: the first characters (byte-order mark removed) and the first line, line end removed
    head: str = ""
    first_line: str = ""

    def control_character(self) -> str | None:
        """Where the first control character (other than tab, CR, LF, FF) of the head is, for a
        message: a sign of a binary file, whatever its bytes decoded to."""
        for i, ch in enumerate(self.head):
            if ch < " " and ch not in "\t\r\n\f":
                return f"character {i}: control character {ord(ch):#04x}"
        return None


def read_text(
    path: Path, name: str, encodings: tuple[str, ...], error: type[CsvLoadError]
) -> TextFile:
    """Hash ``path`` and find the first of ``encodings`` (``utf-8`` with or without BOM,
    ``utf-16`` only after its BOM, any Python codec) that decodes every byte (streaming).
    Raises ``error`` for an unreadable or blank file."""
    try:
        sha, blank, start = _sha256(path)
        if blank:
            raise error(f"{name}: empty file")
        tried = tuple(e for e in encodings if (e == "utf-16") == start.startswith(_UTF16_BOMS))
        first_bad = None
        encoding = None
        for enc in tried:
            bad = _bad_byte(path, enc)
            if bad is None:
                encoding = enc
                break
            first_bad = bad if first_bad is None else first_bad
    except OSError as exc:
        raise error(f"{name}: cannot read: {exc}") from None
    result = TextFile(path, name, sha, encoding, tried, first_bad or 0)
    if encoding is not None:
        with _open_text(path, encoding) as fh:
            result.head = fh.read(_HEAD_CHARS).lstrip("\ufeff")
            fh.seek(0)
            result.first_line = fh.readline(MAX_FIELD_CHARS).lstrip("\ufeff").rstrip("\r\n")
    return result


def _sha256(path: Path) -> tuple[str, bool, bytes]:
    """(sha256, whether every byte is whitespace, the first bytes)."""
    sha = hashlib.sha256()
    blank, start = True, b""
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            start = start or chunk[:4]
            sha.update(chunk)
            blank = blank and not chunk.strip()
    return sha.hexdigest(), blank, start


def _bad_byte(path: Path, encoding: str) -> int | None:
    """The offset of the first byte ``encoding`` cannot decode; None when it decodes all."""
    decoder = codecs.getincrementaldecoder(_CODEC.get(encoding, encoding))()
    offset = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return offset + exc.start
            offset += len(chunk)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return offset
    return None


def _open_text(path: Path, encoding: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(path.open("rb"), encoding=_CODEC.get(encoding, encoding), newline="")


def header_fields(line: str, delimiter: str) -> list[str]:
    """The fields of a header line, as the csv module splits it (quotes honoured)."""
    return next(csv.reader([line], delimiter=delimiter, quotechar='"'), [])


def utf8_copy(text: TextFile, folder: Path) -> Path:
    """The path DuckDB reads: the file itself when UTF-8, else a UTF-8 copy in ``folder``
    (DuckDB reads UTF-8 natively; CP1252 needs its ``encodings`` extension, a download)."""
    if text.encoding == "utf-8":
        return text.path
    out = folder / f"{text.sha256[:16]}.utf8.csv"
    with _open_text(text.path, text.encoding or "") as src, out.open("w", encoding="utf-8") as dst:
        first = True
        while chunk := src.read(_CHUNK):
            dst.write(chunk.lstrip("\ufeff") if first else chunk)
            first = False
    return out


# --------------------------------------------------------------------------------------------
# DuckDB


def read_rows(
    con: duckdb.DuckDBPyConnection,
    into: str,
    select: str,
    text: TextFile,
    path: Path,
    columns: dict[str, str],
    *,
    delimiter: str,
    error: type[CsvLoadError],
    options: str = "",
    params: list | None = None,
) -> int:
    """Parse ``path`` (UTF-8) with DuckDB and run ``{into} select {select}`` over its rows:
    ``columns`` ({name: DuckDB type}, one per header field, in order) and ``source_row``, the
    data row number. ``into`` is a ``create table … as`` or an ``insert into …``.

    Returns the row count; raises ``error`` naming the first rejected line (field count,
    quoting, line size, a value its type does not parse) or a file without data rows.
    """
    spec = ", ".join(f"{sql_literal(c)}: {sql_literal(t)}" for c, t in columns.items())
    rejects = "_crimecast_csv_rejects"
    con.execute(f"drop table if exists {rejects}")
    con.execute(f"drop table if exists {rejects}_scans")
    rows = con.execute(
        f"{into} select {select} from (select *, row_number() over () as source_row "
        f"from read_csv({sql_literal(path)}, columns={{{spec}}}, header=true, "
        f"delim={sql_literal(delimiter)}, quote='\"', escape='\"', strict_mode=true, "
        f"auto_detect=false, null_padding=false, max_line_size={MAX_FIELD_CHARS}, "
        f"store_rejects=true, rejects_table='{rejects}', rejects_scan='{rejects}_scans'"
        f"{options}))",
        params or [],
    ).fetchone()[0]
    order = " ".join(f"when {sql_literal(t)} then {i}" for i, t in enumerate(_REJECT_ORDER))
    first = con.execute(
        f"select line, column_name, error_type, csv_line, error_message from {rejects} "
        f"order by line, case error_type {order} else 99 end, column_idx limit 1"
    ).fetchone()
    con.execute(f"drop table {rejects}")
    con.execute(f"drop table {rejects}_scans")
    if first:
        raise error(_reject_message(text.name, *first, delimiter=delimiter))
    if not rows:
        raise error(f"{text.name}: empty file (a header but no data rows)")
    return int(rows)


def _reject_message(
    name: str, line: int, column: str | None, kind: str, csv_line: str, reason: str, *, delimiter
) -> str:
    where = f"{name}: line {line}"
    if kind == "LINE SIZE OVER MAXIMUM":
        return (
            f"{where}: a field is longer than {MAX_FIELD_CHARS:,} characters (an unclosed "
            "quote, or not this file?)"
        )
    if kind in ("MISSING COLUMNS", "TOO MANY COLUMNS"):
        # the record's own count (DuckDB's stops at the first extra field); blank lines
        # before it are part of DuckDB's csv_line
        record = next((r for r in _records(csv_line, delimiter) if r), [])
        expected = re.search(r"Expected Number of Columns: (\d+)", reason)
        return (
            f"{where}: expected {expected.group(1) if expected else '?'} fields, found "
            f"{len(record)} (truncated or malformed row)"
        )
    if kind == "CAST":
        value = re.search(r'Could not convert string "(.*)" to', reason, re.S)
        return (
            f"{where}, column '{column}': cannot parse "
            f"{shown(value.group(1) if value else csv_line)} as a number"
        )
    if kind == "UNQUOTED VALUE":
        return f"{where}: malformed CSV: a quoted field is not closed, or text follows its quote"
    return f"{where}: malformed CSV: {shown(reason, 200)}"


def _records(text: str, delimiter: str) -> Iterator[list[str]]:
    try:
        yield from csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"')
    except csv.Error:
        return


def line_of_row(path: Path, delimiter: str, row: int, quote: str = '"') -> int:
    """The line where data row ``row`` (1-based, as ``source_row``) starts: blank lines are
    skipped, as DuckDB does, and a quoted field may span lines (error path only)."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter, quotechar=quote)
        seen, start = -1, 1  # the header is row 0
        for record in reader:
            if record:
                seen += 1
                if seen == row:
                    return start
            start = reader.line_num + 1
    return row + 1


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction: every table of a load, or none (a load error rolls back)."""
    con.execute("begin transaction")
    try:
        yield
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")
