"""Validate a mapping and preview what it would load, without writing anything.

The input is loaded with the real loader into a temporary in-memory DuckDB (sample files and
downloads go to a temporary folder). The rows then go through the cleaning rules of dbt's
staging model (`_STAGING_SQL`, the same rules as int_incidents__checked.sql: mapping filters,
timestamps, plausible dates, areas, categories through dbt_project/seeds/category_map.csv,
duplicates), and the report says what dbt would do: rows read, removed per reason and kept,
duplicates, days whose net count would be negative, and the date range, areas and every
category of the rows kept.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from ingest.loader import load_source
from ingest.mapping import SourceMapping, load_mapping, seeds_dir_for

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

# The cleaning of dbt on one source's raw rows, policies inlined from the mapping: the
# categories and drop reasons of int_incidents__checked.sql, its duplicate rule (`dedupe`),
# the orphan reversals of int_incidents__orphan_reversals.sql (`orphan_reversals`). Keep them
# in step:
# tests/test_hostile_loader.py::test_preview_counts_equal_dbt compares the two.
_STAGING_SQL = """
create temp table staged as
with
category_map as (
    select trim(source) as source, trim(match_on) as match_on,
           trim(raw_value) as raw_value, trim(category) as category
    from {category_map}
),
renamed as (
    select trim(source) as source,
           nullif(trim(incident_id), '') as incident_id,
           occurred_at,
           nullif(trim(occurred_at_raw), '') as occurred_at_raw,
           nullif(trim(area), '') as area,
           nullif(trim(category_raw), '') as category_raw,
           nullif(upper(trim(offense_code)), '') as offense_code,
           nullif(trim(offense_description), '') as offense_description,
           incident_count,
           nullif(trim(filter_reason), '') as filter_reason,
           source_file, source_sha256, source_row, loaded_at
    from raw.incidents
),
map_category as (
    select source, lower(raw_value) as match_key, category from category_map
    where match_on = 'category'
),
map_offense_code as (
    select source, ltrim(upper(raw_value), '0') as match_key, category from category_map
    where match_on = 'offense_code'
),
map_offense_description as (
    select source, upper(raw_value) as match_key, category from category_map
    where match_on = 'offense_description'
),
categorised as (
    select renamed.*,
           coalesce(mc.category, renamed.category_raw, mo.category, md.category) as category
    from renamed
    left join map_category as mc
        on renamed.source = mc.source and lower(renamed.category_raw) = mc.match_key
    left join map_offense_code as mo
        on renamed.source = mo.source and ltrim(renamed.offense_code, '0') = mo.match_key
    left join map_offense_description as md
        on renamed.source = md.source and upper(renamed.offense_description) = md.match_key
),
checked as (
    select *,
           case
               when filter_reason is not null then filter_reason
               when occurred_at is null then 'unparseable_timestamp'
               when occurred_at < make_timestamp({min_year}, 1, 1, 0, 0, 0)
                    or occurred_at > loaded_at + interval 14 hour then 'implausible_date'
               when area is null then 'missing_area'
               when category is null then 'missing_category'
           end as invalid_reason
    from categorised
),
keyed as (
    select *,
           case when incident_id is null then row_number() over (
               partition by source, source_file, invalid_reason is null, incident_id,
                            offense_code, offense_description, occurred_at, area,
                            incident_count, category_raw
               order by source_row
           ) end as occurrence_in_file,
           {dedupable} as is_dedupable
    from checked
),
ranked as (
    select *,
           case when is_dedupable then row_number() over same_record end as duplicate_rank,
           first_value(source_file) over same_record as first_file,
           first_value(source_row) over same_record as first_row
    from keyed
    window same_record as (
        partition by source, is_dedupable, {partition}
        order by loaded_at desc nulls last, source_row asc, source_sha256 asc
    )
)
select *,
       cast(occurred_at as date) as occurred_date,
       coalesce(invalid_reason, case when duplicate_rank > 1 then 'duplicate' end)
           as drop_reason
from ranked;

create temp table orphans as
with
kept as (select * from staged where drop_reason is null),
originals as (
    select incident_id, occurred_at, area, category, sum(incident_count) as n_original
    from kept where incident_count > 0
    group by all
),
matched as (
    select kept.*, coalesce(originals.n_original, 0) as n_original,
           sum(-kept.incident_count) over (
               partition by kept.incident_id, kept.occurred_at, kept.area, kept.category
               order by kept.loaded_at, kept.source_sha256, kept.source_row
               rows between unbounded preceding and current row
           ) as n_reversed
    from kept
    left join originals
        on kept.incident_id is not distinct from originals.incident_id
        and kept.occurred_at = originals.occurred_at
        and kept.area = originals.area
        and kept.category = originals.category
    where kept.incident_count < 0
)
select source_file, source_row from matched where n_reversed > n_original;

create temp table preview as
select staged.* exclude (drop_reason),
       orphans.source_row is not null as is_orphan,
       coalesce(
           staged.drop_reason,
           case when orphans.source_row is not null and {drop_orphans} then 'orphan_reversal' end
       ) as drop_reason
from staged
left join orphans using (source_file, source_row);
"""

#: dedupe key (mapping field) → column of the staged rows
_KEY_COLUMNS = {
    "incident_id": "incident_id",
    "offense_code": "offense_code",
    "offense_description": "offense_description",
    "timestamp": "occurred_at",
    "area": "area",
}


def _dedupe_sql(mapping: SourceMapping) -> tuple[str, str]:
    """(is_dedupable expression, partition columns) of int_incidents__checked's duplicate
    window for the mapping's `dedupe` policy."""
    mode = getattr(mapping, "dedupe", "default")
    keys = set(getattr(mapping, "dedupe_keys", ()))
    if mode == "off":
        return "false", "source"
    if mode == "keys":
        columns = {**_KEY_COLUMNS, "count": "incident_count", "category": "category"}
        missing = " or ".join(f"{columns[k]} is null" for k in sorted(keys))
        parts = [_KEY_COLUMNS[k] for k in _KEY_COLUMNS if k in keys]
        # without `count` among the keys a reversal still only duplicates a reversal
        parts.append("incident_count" if "count" in keys else "sign(incident_count)")
        if "category" in keys:
            parts.append("category")
        return f"invalid_reason is null and not ({missing or 'false'})", ", ".join(parts)
    parts = [*_KEY_COLUMNS.values(), "incident_count"]
    parts += [
        "case when incident_id is null then category_raw end",
        "occurrence_in_file",
    ]
    return "invalid_reason is null", ", ".join(parts)


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


def _category_map_sql(mapping: SourceMapping) -> str:
    seed = seeds_dir_for(mapping.path) / "category_map.csv" if mapping.path else None
    if seed is None or not seed.is_file():
        return (
            "(select NULL::VARCHAR as source, NULL::VARCHAR as match_on, "
            "NULL::VARCHAR as raw_value, NULL::VARCHAR as category where false)"
        )
    path = str(seed).replace("'", "''")
    return f"read_csv('{path}', header=true, all_varchar=true)"


def preview_source(mapping_path: str | Path, input_spec: str | None = None) -> str:
    """A text report of what `mapping_path` would load from `input_spec` (None → the mapping's
    `input`) and what dbt's cleaning would keep. Raises MappingError for an invalid mapping
    and LoadError for a file problem."""
    mapping = load_mapping(Path(mapping_path))
    con = duckdb.connect(":memory:")
    try:
        result = load_source(con, mapping, input_spec)
        min_year = int(os.environ.get("CRIMECAST_MIN_YEAR", "1990"))
        dedupable, partition = _dedupe_sql(mapping)
        con.execute(
            _STAGING_SQL.format(
                category_map=_category_map_sql(mapping),
                min_year=min_year,
                dedupable=dedupable,
                partition=partition,
                drop_orphans=str(_policy(mapping, "orphan_reversals", "drop") == "drop"),
            )
        )
        return _report(con, mapping, input_spec, result.files_skipped, min_year)
    finally:
        con.close()


def _report(
    con: duckdb.DuckDBPyConnection,
    mapping: SourceMapping,
    input_spec: str | None,
    skipped: list[str],
    min_year: int,
) -> str:
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
        lines.append(_last_day(con, _policy(mapping, "last_day", "partial")))
    n_areas, areas = _values(con, "area", "drop_reason is null", _TOP)
    lines.append(f"areas of the rows kept ({n_areas}): {areas or '(none)'}")
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
        "select source_file, source_row, first_file, first_row from preview "
        "where drop_reason = 'duplicate' order by source_file, source_row limit ?",
        [_EXAMPLES],
    ).fetchall()
    if dups:
        lines.append("  duplicate examples:")
        lines += [
            f"    {Path(f).name} row {r} duplicates {Path(f0).name} row {r0}"
            for f, r, f0, r0 in dups
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


def _last_day(con: duckdb.DuckDBPyConnection, policy: str) -> str:
    """Whether daily_counts includes the last day with data (int_incidents__source_days.sql:
    `auto` = complete when it has at least 3/4 of the median records of the 28 days before it)."""
    last, n_last, median = con.execute(
        """
        with kept as (select occurred_date from preview where drop_reason is null),
        bounds as (select min(occurred_date) as first, max(occurred_date) as last from kept),
        days as (
            select d::date as day
            from bounds, generate_series(greatest(first, last - 28), last - 1, interval 1 day)
                as t(d)
        ),
        counts as (select occurred_date as day, count(*) as n from kept group by 1)
        select (select last from bounds),
               (select n from counts where day = (select last from bounds)),
               (select median(coalesce(counts.n, 0))
                from days left join counts using (day))
        """
    ).fetchone()
    complete = policy == "complete" or (
        policy == "auto" and median is not None and n_last >= 0.75 * median
    )
    why = f"last_day: {policy}"
    if policy == "auto":
        shown = f"{median:g}" if median is not None else "none (no day before it)"
        why += f"; {_n(n_last)} rows vs a median of {shown} over the 28 days before"
    outcome = "included in daily_counts" if complete else "left out of daily_counts as partial"
    return f"last day {last}: {_n(n_last)} rows, {outcome} ({why})"
