"""Loader for the SSMSI recorded-crime files (data.gouv.fr): regional and departmental.

The files are `;`-separated, UTF-8 with a byte-order mark, every field quoted, with a decimal
comma in ``taux_pour_mille``. Python checks the file and its header (:mod:`ingest.csv_files`);
DuckDB's ``read_csv`` parses and types the rows, and one raw table per file kind,
``raw.france_regional`` and ``raw.france_departmental``, is written in ONE DuckDB transaction:
a file-level problem (empty file, wrong delimiter, missing columns, a truncated row, an
unparseable number) raises :class:`FranceLoadError` naming the file (and the line and column
where known) and rolls back, so the warehouse is unchanged.

Inputs (``spec``): a file, a folder (the newest ``donnee-reg*`` / ``donnee-dep*`` CSV in it),
a glob, an http(s) URL, or ``sample`` (the deterministic generator in
:mod:`samples.france`). The published columns keep their names, lower-cased.
"""

from __future__ import annotations

import csv
import fnmatch
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from ingest.csv_files import (
    WHITESPACE,
    CsvLoadError,
    TextFile,
    header_fields,
    line_of_row,
    read_rows,
    read_text,
    resolve,
    shown,
    sql_literal,
    transaction,
)

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
#: DuckDB type of each typed column; the others are text
_TYPES = {
    "annee": "INTEGER",
    "nombre": "BIGINT",
    "taux_pour_mille": "DOUBLE",
    "insee_pop": "BIGINT",
    "insee_pop_millesime": "INTEGER",
    "insee_log": "BIGINT",
    "insee_log_millesime": "INTEGER",
}
#: Values read as "no value" (the SSMSI writes NA for statistical secrecy in its finer files).
_MISSING = ["", "NA", "N/A", "nd"]
_NOT_NULL = {"annee", "indicateur", "unite_de_compte", "code_region", "code_departement"}
#: whole decimal numbers only: DuckDB's integer cast would read `1.5` as 2, `1e3`, `0x10`
_INTEGER_RE = "[+-]?[0-9]+"


class FranceLoadError(CsvLoadError):
    """A France file cannot be loaded; the message names the file and the problem."""


def table_name(kind: str) -> str:
    _check_kind(kind)
    return f"france_{kind}"


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown France file kind {kind!r}; expected one of {KINDS}")


def resolve_input(kind: str, spec: str, download_dir: Path) -> tuple[Path, str]:
    """Resolve ``spec`` to one local file for ``kind``: (local path, name to report).

    A folder contributes its ``donnee-reg*.csv`` (regional) or ``donnee-dep*.csv``
    (departmental) files; a glob covering both kinds keeps this kind's files. When several
    files remain, the last by name is used: the SSMSI names end in the production date, so
    that is the newest release.
    """
    _check_kind(kind)
    found = resolve(spec, download_dir, _PATTERN[kind] + ".csv", FranceLoadError)
    if len(found) > 1:
        mine = [f for f in found if fnmatch.fnmatch(f.path.name, _PATTERN[kind] + "*")]
        found = sorted(mine or found, key=lambda f: f.path.name)
    return found[-1].path, found[-1].label


# --------------------------------------------------------------------------- checks (Python)


@dataclass
class CheckedFile:
    """A file whose encoding and header passed; ``columns`` names each header field for
    DuckDB (the published name, or ``_extra_<i>`` for a column the loader ignores)."""

    kind: str
    text: TextFile
    columns: list[str]

    @property
    def name(self) -> str:
        return self.text.name


def check_file(path: str | Path, kind: str, name: str | None = None) -> CheckedFile:
    """Check one file of ``kind`` before DuckDB reads it; ``name`` is used in messages."""
    _check_kind(kind)
    name = name or str(path)
    text = read_text(Path(path), name, ("utf-8",), FranceLoadError)
    if text.encoding is None:
        raise FranceLoadError(
            f"{name}: not UTF-8 (byte {text.bad_byte}): the SSMSI files are UTF-8 with a BOM"
        )
    control = text.control_character()
    if control:
        raise FranceLoadError(f"{name}: not a text file ({control}): the SSMSI files are UTF-8 CSV")
    if ";" not in text.first_line:
        other = next((d for d in (",", "\t", "|") if d in text.first_line), None)
        what = f"separated by {other!r}" if other else "not separated by ';'"
        raise FranceLoadError(f"{name}: wrong delimiter: the header is {what}; expected ';'")
    try:
        header = header_fields(text.first_line, ";")
    except csv.Error as exc:
        raise FranceLoadError(f"{name}: line 1: malformed header: {exc}") from None
    keys = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED_COLUMNS[kind] if c not in keys]
    if missing:
        raise FranceLoadError(
            f"{name}: missing column(s) {', '.join(missing)} for the {kind} file "
            f"(found: {shown(', '.join(h.strip() for h in header), 200)})"
        )
    if kind == "regional" and "code_departement" in keys:
        raise FranceLoadError(
            f"{name}: has a Code_departement column: this is the departmental file, "
            "not the regional one"
        )
    wanted = {keys.index(c): c for c in REQUIRED_COLUMNS[kind]}
    columns = [wanted.get(i, f"_extra_{i}") for i in range(len(header))]
    return CheckedFile(kind=kind, text=text, columns=columns)


# --------------------------------------------------------------------------- parsing (DuckDB)


def _trimmed(col: str) -> str:
    """The value as read: trimmed, '' → NULL (a DOUBLE is typed by read_csv already)."""
    if _TYPES.get(col) == "DOUBLE":
        return col
    return f"nullif(trim({col}, {sql_literal(WHITESPACE)}), '') as {col}"


def _checks(kind: str) -> list[tuple[int, str, str, str]]:
    """(order, column, problem, SQL condition) over the trimmed values: what DuckDB's types
    do not refuse by themselves, a missing required value and a count that is not a whole
    number."""
    checks = []
    for order, col in enumerate(REQUIRED_COLUMNS[kind]):
        sql_type = _TYPES.get(col, "VARCHAR")
        missing = f"({col} is null or {col} in {tuple(_MISSING[1:])})"
        if col in _NOT_NULL:
            checks.append((order, col, "missing", missing))
        if sql_type in ("INTEGER", "BIGINT"):
            whole = f"regexp_full_match({col}, '{_INTEGER_RE}')"
            fits = f"try_cast({col} as {sql_type}) is not null"
            checks.append((order, col, "number", f"not {missing} and not ({whole} and {fits})"))
    return checks


def _first_bad_value(con: duckdb.DuckDBPyConnection, rows: str, f: CheckedFile) -> str | None:
    """The message for the first row failing a check, if any (one scan; the error path reads
    that row again for its column)."""
    checks = _checks(f.kind)
    any_bad = " or ".join(f"coalesce({cond}, false)" for _, _, _, cond in checks)
    (row,) = con.execute(f"select min(source_row) from {rows} where {any_bad}").fetchone()
    if row is None:
        return None
    union = " union all ".join(
        f"select {order} as k, '{col}' as col, '{what}' as what, cast({col} as varchar) "
        f"from {rows} where source_row = {int(row)} and {cond}"
        for order, col, what, cond in checks
    )
    _, col, what, value = con.execute(f"select * from ({union}) order by k limit 1").fetchone()
    where = f"{f.name}: line {line_of_row(f.text.path, ';', int(row))}, column '{col}'"
    if what == "missing":
        return f"{where}: value is missing"
    return f"{where}: cannot parse {shown(value)} as a number"


def _typed(col: str) -> str:
    sql_type = _TYPES.get(col, "VARCHAR")
    if sql_type in ("VARCHAR", "DOUBLE"):
        return col
    return (
        f"cast(case when {col} not in {tuple(_MISSING[1:])} then {col} end as {sql_type}) as {col}"
    )


def _write_file(con: duckdb.DuckDBPyConnection, f: CheckedFile, loaded_at: datetime) -> int:
    """Replace ``raw.france_<kind>`` with ``f``'s rows (inside the caller's transaction)."""
    rows = f"_france_{f.kind}_rows"
    n = read_rows(
        con,
        f"create or replace temp table {rows} as",
        ", ".join([_trimmed(c) for c in REQUIRED_COLUMNS[f.kind]] + ["source_row"]),
        f.text,
        f.text.path,
        {c: "DOUBLE" if _TYPES.get(c) == "DOUBLE" else "VARCHAR" for c in f.columns},
        delimiter=";",
        error=FranceLoadError,
        # quoted or not, these are NULL in every column ('' in a text column)
        options=f", decimal_separator=',', nullstr={_MISSING}",
    )
    bad = _first_bad_value(con, rows, f)
    if bad:
        raise FranceLoadError(bad)
    select = ",\n  ".join(_typed(c) for c in REQUIRED_COLUMNS[f.kind])
    con.execute(
        f"create or replace table raw.{table_name(f.kind)} as select\n  {select},\n"
        "  ?::varchar as source_file, ?::varchar as source_sha256,\n"
        f"  source_row, ?::timestamp as loaded_at\nfrom {rows} order by source_row",
        [f.name, f.text.sha256, loaded_at],
    )
    con.execute(f"drop table {rows}")
    return n


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


def write_files(con: duckdb.DuckDBPyConnection, files: list[CheckedFile]) -> list[FranceLoadResult]:
    """Parse every checked file with DuckDB and replace its table, all in one transaction;
    any error rolls back."""
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    results = []
    with transaction(con):
        con.execute("create schema if not exists raw")
        for f in files:
            rows = _write_file(con, f, loaded_at)
            lo, hi = con.execute(
                f"select min(annee), max(annee) from raw.{table_name(f.kind)}"
            ).fetchone()
            results.append(FranceLoadResult(f.kind, f.name, f.text.sha256, rows, (lo, hi)))
    return results


def parse_file(path: str | Path, kind: str, name: str | None = None) -> pd.DataFrame:
    """The rows of one file as :func:`load_france` writes them (read in a throw-away
    in-memory warehouse)."""
    with duckdb.connect() as con:
        write_files(con, [check_file(path, kind, name)])
        return con.execute(f"select * from raw.{table_name(kind)} order by source_row").df()


def load_france(
    con: duckdb.DuckDBPyConnection,
    specs: dict[str, str | None],
    *,
    sample_dir: Path,
    download_dir: Path,
) -> list[FranceLoadResult]:
    """Load the files named by ``specs`` ({kind: spec}; None or ``sample`` = generated sample).

    Every file is resolved and checked first; then they are parsed and written in one
    transaction. Any error leaves the warehouse as it was.
    """
    checked: list[CheckedFile] = []
    for kind, spec in specs.items():
        _check_kind(kind)
        if spec is None or spec.strip().lower() == "sample":
            from samples.france import write_sample

            paths = write_sample(sample_dir)
            path, name = paths[kind], str(paths[kind])
        else:
            path, name = resolve_input(kind, spec.strip(), download_dir)
        checked.append(check_file(path, kind, name))
    return write_files(con, checked)


def input_specs(input_for) -> dict[str, str | None]:
    """Per kind: ``CRIMECAST_INPUT_FRANCE_REGIONAL`` / ``..._DEPARTMENTAL``, else
    ``CRIMECAST_INPUT_FRANCE`` (a folder or glob holding both files), else the sample."""
    common = input_for("france")
    return {kind: input_for(f"france_{kind}") or common for kind in KINDS}
