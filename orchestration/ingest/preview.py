"""Validate a mapping and preview what it would load, without writing anything.

The input is loaded with the real loader into a temporary in-memory DuckDB (sample files and
downloads go to a temporary folder), then summarised: rows parsed per file, rows flagged or
dropped by reason, date range, areas and categories.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from orchestration.ingest.loader import load_source
from orchestration.ingest.mapping import load_mapping

_TOP = 12


def _n(x: int | float | None) -> str:
    return f"{int(x or 0):,}"


def _top(con: duckdb.DuckDBPyConnection, expr: str, where: str = "true") -> tuple[int, str]:
    rows = con.execute(
        f"select {expr} as v, count(*) as n from raw.incidents where {where} "
        "group by 1 order by 2 desc, 1 limit 1000"
    ).fetchall()
    shown = ", ".join(f"{v if v is not None else '(null)'} {_n(n)}" for v, n in rows[:_TOP])
    if len(rows) > _TOP:
        shown += f", … ({len(rows) - _TOP} more)"
    return len(rows), shown


def preview_source(mapping_path: str | Path, input_spec: str | None = None) -> str:
    """A text report of what `mapping_path` would load from `input_spec` (None → the mapping's
    `input`). Raises MappingError for an invalid mapping and LoadError for a file problem."""
    mapping = load_mapping(Path(mapping_path))
    con = duckdb.connect(":memory:")
    try:
        result = load_source(con, mapping, input_spec)
        lines = [
            f"source {mapping.name}: {mapping.title} (country {mapping.country}, "
            f"time zone {mapping.timezone})",
            f"mapping {mapping.path}: valid",
            f"input: {input_spec or mapping.default_input}",
            "",
            f"files ({len(result.files_loaded)} loaded"
            + (
                f", {len(result.files_skipped)} duplicate content skipped"
                if result.files_skipped
                else ""
            )
            + "):",
        ]
        for f, enc, rows in con.execute(
            "select source_file, encoding, rows from raw.source_files order by source_file"
        ).fetchall():
            lines.append(f"  {f}  [{enc}]  {_n(rows)} rows")

        stats = con.execute(
            """
            select count(*),
                   count(*) filter (where occurred_at is null),
                   count(*) filter (where area is null),
                   count(*) filter (where category_raw is null),
                   count(*) filter (where category_raw is null and offense_code is null
                                    and offense_description is null),
                   sum(incident_count),
                   count(*) filter (where incident_count < 0),
                   min(occurred_at), max(occurred_at)
            from raw.incidents
            """
        ).fetchone()
        total, no_ts, no_area, no_cat, no_cat_at_all, count_sum, reversals, lo, hi = stats
        lines += [
            "",
            f"rows parsed: {_n(total)} (sum of incident_count: {_n(count_sum)}"
            + (f", {_n(reversals)} reversal rows with a negative count" if reversals else "")
            + ")",
            "rows flagged / to be dropped by dbt, by reason:",
        ]
        for reason, n in sorted(result.rows_flagged.items()):
            lines.append(f"  {reason} (mapping filter): {_n(n)}")
        lines.append(f"  unparseable_timestamp: {_n(no_ts)}")
        lines.append(f"  missing_area: {_n(no_area)}")
        lines.append(
            f"  no published category: {_n(no_cat)} (dbt maps these via seeds/category_map.csv "
            f"by offense code / description; {_n(no_cat_at_all)} have neither)"
        )
        if no_ts:
            examples = con.execute(
                "select source_file, source_row, occurred_at_raw from raw.incidents "
                "where occurred_at is null order by source_file, source_row limit 5"
            ).fetchall()
            lines.append("  unparseable timestamp examples:")
            lines += [f"    {Path(f).name} row {r}: {raw!r}" for f, r, raw in examples]
        days = (hi.date() - lo.date()).days + 1 if lo and hi else 0
        lines += ["", f"date range: {lo} → {hi} ({_n(days)} days)" if lo else "date range: none"]
        n_areas, areas = _top(con, "area")
        lines.append(f"areas ({n_areas}): {areas}")
        n_cats, cats = _top(con, "category_raw", "category_raw is not null")
        lines.append(f"published categories ({n_cats}): {cats or '(none)'}")
        if no_cat:
            n_codes, codes = _top(
                con,
                "coalesce(offense_code || ' ', '') || coalesce(offense_description, '')",
                "category_raw is null",
            )
            lines.append(f"offense codes / descriptions without a category ({n_codes}): {codes}")
        return "\n".join(lines) + "\n"
    finally:
        con.close()
