"""Validate a mapping and preview what it would load, without writing anything.

The input is loaded with the real loader into a scratch DuckDB file in a temporary folder
(sample files and downloads go there too), then dbt's own cleaning models run on it
(int_incidents__checked, int_incidents__orphan_reversals, int_incidents__source_days,
incidents_data_quality, with the category seed): the report says what dbt does with these rows,
because dbt did it: rows read, removed per reason and kept, duplicates, days whose net count
would be negative, the last day's completeness, and the date range, areas, coordinates and
every category of the rows kept. One home for the cleaning rules: the dbt models.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

from ingest.loader import load_source
from ingest.mapping import SourceMapping, load_mapping
from orchestration.config import DBT_PROJECT_DIR

#: the scratch warehouse's file name: the dbt profile's catalog is the file's stem, as for
#: the real warehouse (warehouse/crimecast.duckdb)
_SCRATCH_NAME = "crimecast.duckdb"


class PreviewError(Exception):
    """dbt's cleaning models failed on the previewed input (the message says where)."""


_TOP = 12
_EXAMPLES = 5
_NEGATIVE_DAYS_SHOWN = 50
#: dbt's drop reasons after the mapping filters, in the order they are checked
STANDARD_REASONS = (
    "unparseable_timestamp",
    "implausible_date",
    "missing_area",
    "missing_category",
    "duplicate",
    "orphan_reversal",
)

#: every raw row with dbt's outcome: int_incidents__checked's drop_reason, or orphan_reversal
#: for a reversal that int_incidents__kept leaves out (the source's policy is applied there)
_PREVIEW_VIEW = """
create temp view preview as
select
    checked.* exclude (drop_reason),
    orphans.source_row is not null as is_orphan,
    coalesce(
        checked.drop_reason,
        case when kept.source_row is null then 'orphan_reversal' end
    ) as drop_reason
from intermediate.int_incidents__checked as checked
left join intermediate.int_incidents__orphan_reversals as orphans
    using (source, source_file, source_row)
left join intermediate.int_incidents__kept as kept
    using (source, source_file, source_row)
"""

#: the dbt nodes the preview builds: the category seed, the cleaning and the source's range
_DBT_SELECT = ("category_map", "+incidents_data_quality", "+int_incidents__source_days")


def _dbt_clean(warehouse: Path, scratch: Path) -> None:
    """dbt's own cleaning models on the preview's scratch warehouse (a subprocess: its DuckDB
    instance and logs stay out of this process); a failure raises PreviewError with dbt's
    first error line."""
    args = [sys.executable, "-c", "from dbt.cli.main import cli; cli()", "build", "--quiet"]
    args += ["--select", *_DBT_SELECT, "--resource-type", "model", "--resource-type", "seed"]
    args += ["--vars", json.dumps({"warehouse_path": str(warehouse)})]
    args += ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    args += ["--target-path", str(scratch / "target"), "--log-path", str(scratch / "logs")]
    done = subprocess.run(args, capture_output=True, text=True, cwd=scratch, check=False)
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stdout + done.stderr).splitlines() if ln.strip()]
        first = next((ln for ln in lines if "rror" in ln), lines[-1] if lines else "no output")
        raise PreviewError(f"dbt's cleaning models failed on this input: {first[:400]}")


def _n(x: int | float | None) -> str:
    return f"{int(x or 0):,}"


def _values(
    con: duckdb.DuckDBPyConnection, expr: str, where: str, limit: int | None = None
) -> tuple[int, str]:
    """(number of distinct values, "value rows, …" by rows descending; `limit` cuts it)."""
    rows = con.execute(
        f"select {expr} as v, count(*) as n from preview where {where} "
        "group by 1 order by 2 desc, 1"
    ).fetchall()
    shown = rows[:limit] if limit else rows
    text = ", ".join(f"{v if v is not None else '(null)'} {_n(n)}" for v, n in shown)
    if len(rows) > len(shown):
        text += f", … ({len(rows) - len(shown)} more)"
    return len(rows), text


def _policy(mapping: SourceMapping, name: str, default: str) -> str:
    return str(getattr(mapping, name, default))


def preview_source(mapping_path: str | Path, input_spec: str | None = None) -> str:
    """A text report of what `mapping_path` would load from `input_spec` (None → the mapping's
    `input`) and what dbt's cleaning keeps. Raises MappingError for an invalid mapping,
    LoadError for a file problem and PreviewError when dbt fails."""
    mapping = load_mapping(Path(mapping_path))
    with tempfile.TemporaryDirectory(prefix="crimecast-preview-") as tmp:
        scratch = Path(tmp)
        warehouse = scratch / _SCRATCH_NAME
        con = duckdb.connect(str(warehouse))
        try:
            result = load_source(con, mapping, input_spec)
        finally:
            con.close()
        _dbt_clean(warehouse, scratch)
        con = duckdb.connect(str(warehouse), read_only=True)
        try:
            con.execute(_PREVIEW_VIEW)
            return _report(con, mapping, input_spec, result.files_skipped)
        finally:
            con.close()


def _report(
    con: duckdb.DuckDBPyConnection,
    mapping: SourceMapping,
    input_spec: str | None,
    skipped: list[str],
) -> str:
    # the year is dbt's var (int_incidents__checked.sql), named here for the reader only
    min_year = os.environ.get("CRIMECAST_MIN_YEAR", "").strip() or "1990"
    files = con.execute(
        "select source_file, encoding, rows from raw.source_files order by source_file"
    ).fetchall()
    lines = [
        f"source {mapping.name}: {mapping.title} (country {mapping.country}, "
        f"time zone {mapping.timezone})",
        f"mapping {mapping.path}: valid",
        f"input: {input_spec or mapping.default_input}",
        "",
        f"files ({len(files)} loaded"
        + (f", {len(skipped)} duplicate content skipped" if skipped else "")
        + "):",
    ]
    lines += [f"  {f}  [{enc}]  {_n(rows)} rows" for f, enc, rows in files]

    total, count_sum, reversals, kept, kept_sum = con.execute(
        "select count(*), sum(incident_count), count(*) filter (where incident_count < 0), "
        "count(*) filter (where drop_reason is null), "
        "sum(incident_count) filter (where drop_reason is null) from preview"
    ).fetchone()
    by_reason = dict(
        con.execute(
            "select drop_reason, count(*) from preview where drop_reason is not null group by 1"
        ).fetchall()
    )
    lines += [
        "",
        f"rows read: {_n(total)} (sum of incident_count: {_n(count_sum)}"
        + (f"; {_n(reversals)} reversal rows with a negative count" if reversals else "")
        + ")",
        "rows removed by dbt's cleaning, by reason (the first that applies):",
    ]
    for f in mapping.filters:
        lines.append(f"  {f.name} (mapping filter): {_n(by_reason.get(f.name))}")
    dedupe = _policy(mapping, "dedupe", "default")
    orphan_policy = _policy(mapping, "orphan_reversals", "drop")
    notes = {
        "implausible_date": f"before {min_year} or in the future",
        "duplicate": {
            "default": "a copy of another kept row, built-in rule; one copy stays",
            "off": "dedupe: off",
            "keys": "same dedupe keys as another kept row: "
            + ", ".join(getattr(mapping, "dedupe_keys", ())),
        }.get(dedupe, dedupe),
        "orphan_reversal": f"orphan_reversals: {orphan_policy}",
    }
    for reason in STANDARD_REASONS:
        note = f" ({notes[reason]})" if reason in notes else ""
        lines.append(f"  {reason}{note}: {_n(by_reason.get(reason))}")
    lines.append(f"rows kept: {_n(kept)} (net incident_count {_n(kept_sum)})")
    lines += _examples(con)

    lines += ["", *_negative_days(con, orphan_policy)]

    lo, hi = con.execute(
        "select min(occurred_at), max(occurred_at) from preview where drop_reason is null"
    ).fetchone()
    days = (hi.date() - lo.date()).days + 1 if lo and hi else 0
    lines.append(
        f"date range of the rows kept: {lo} → {hi} ({_n(days)} day{'s' if days > 1 else ''})"
        if lo
        else "date range of the rows kept: none"
    )
    if lo:
        lines.append(_last_day(con))
    n_areas, areas = _values(con, "area", "drop_reason is null", _TOP)
    lines.append(f"areas of the rows kept ({n_areas}): {areas or '(none)'}")
    read, located, implausible = con.execute(
        "select max(rows_read), max(rows_located), max(rows_coordinates_implausible) "
        "from marts.incidents_data_quality"
    ).fetchone()
    if located or implausible:
        lines.append(
            f"coordinates: {_n(located)} of {_n(read)} rows read located "
            f"({100 * (located or 0) / max(read or 0, 1):.1f} %); {_n(implausible)} implausible "
            "(set NULL, the row kept)"
        )
    else:
        lines.append("coordinates: none located (no latitude/longitude mapped or published)")
    n_cats, cats = _values(con, "category", "drop_reason is null")
    lines.append(f"categories of the rows kept ({n_cats}): {cats or '(none)'}")
    n_codes, codes = _values(
        con,
        "coalesce(category_raw || ' / ', '') || coalesce(offense_code || ' ', '') "
        "|| coalesce(offense_description, '')",
        "drop_reason = 'missing_category'",
    )
    if n_codes:
        lines.append(
            f"published category / offense code / description of the missing_category rows "
            f"({n_codes}; add them to dbt_project/seeds/category_map.csv): {codes}"
        )
    return "\n".join(lines) + "\n"


def _examples(con: duckdb.DuckDBPyConnection) -> list[str]:
    lines: list[str] = []
    bad_ts = con.execute(
        "select source_file, source_row, occurred_at_raw from preview "
        "where drop_reason = 'unparseable_timestamp' order by source_file, source_row limit ?",
        [_EXAMPLES],
    ).fetchall()
    if bad_ts:
        lines.append("  unparseable timestamp examples:")
        lines += [f"    {Path(f).name} row {r}: {raw!r}" for f, r, raw in bad_ts]
    dups = con.execute(
        "select source_file, source_row, incident_id, occurred_at_raw from preview "
        "where drop_reason = 'duplicate' order by source_file, source_row limit ?",
        [_EXAMPLES],
    ).fetchall()
    if dups:
        lines.append("  duplicate examples (a copy of a row that is kept):")
        lines += [
            f"    {Path(f).name} row {r}: id {i or '(none)'}, {raw!r}" for f, r, i, raw in dups
        ]
    return lines


def _negative_days(con: duckdb.DuckDBPyConnection, policy: str) -> list[str]:
    """The orphan reversals, and the series-days whose counts would sum below zero if every
    kept reversal were netted (int_incidents__orphan_reversals.sql: `drop` removes the orphans,
    `net` keeps them and daily_counts clamps such days at 0)."""
    orphans = con.execute(
        "select source_file, source_row from preview where is_orphan "
        "order by source_file, source_row"
    ).fetchall()
    rows = con.execute(
        """
        select occurred_date, area, category, sum(incident_count) as net,
               list(source_file || ' row ' || source_row order by source_file, source_row)
                   filter (where incident_count < 0) as negative
        from preview where drop_reason is null or drop_reason = 'orphan_reversal'
        group by all having sum(incident_count) < 0
        order by occurred_date, area, category
        """
    ).fetchall()
    effect = (
        "removed (reason orphan_reversal)"
        if policy == "drop"
        else "kept; daily_counts clamps the days they make negative at 0"
    )
    lines = [
        f"orphan reversals (a negative count with no original among the kept rows): "
        f"{len(orphans)}; orphan_reversals: {policy}: {effect}",
        f"days whose net count would be negative with every reversal netted: {len(rows)}",
    ]
    for day, area, category, net, negative in rows[:_NEGATIVE_DAYS_SHOWN]:
        records = ", ".join(Path(r).name for r in negative[:3])
        more = f" and {len(negative) - 3} more" if len(negative) > 3 else ""
        lines.append(f"  {day} area {area}, {category}: net {net} ({records}{more})")
    if len(rows) > _NEGATIVE_DAYS_SHOWN:
        lines.append(f"  … ({len(rows) - _NEGATIVE_DAYS_SHOWN} more)")
    return lines


def _last_day(con: duckdb.DuckDBPyConnection) -> str:
    """Whether daily_counts includes the last day with data, as int_incidents__source_days
    decided it (the mapping's `last_day` policy)."""
    last, complete, policy, n_last, median = con.execute(
        "select last_day, last_day_complete, last_day_policy, last_day_records, "
        "median_previous_28 from intermediate.int_incidents__source_days"
    ).fetchone()
    why = f"last_day: {policy}"
    if policy == "auto":
        shown = f"{median:g}" if median is not None else "none (no day before it)"
        why += f"; {_n(n_last)} rows vs a median of {shown} over the 28 days before"
    outcome = "included in daily_counts" if complete else "left out of daily_counts as partial"
    return f"last day {last}: {_n(n_last)} rows, {outcome} ({why})"
