"""Serving: the published, read-only copy of the warehouse, and the raw-layer contract checks.

Asset ``[published, warehouse]`` (group "serving") runs last: after every marts and ml asset
of the run succeeded, it exports the allow-listed tables (``PUBLISHED_TABLES`` in
serving/publish.py: aggregates only, small São Paulo cells withheld, the latest
``CRIMECAST_PUBLISH_KEEP_RUNS`` runs per source, plus the ``serving`` contract schema)
into a NEW DuckDB file beside the target, fsyncs it and ``os.replace``s it over the
warehouse resource's ``paths.published`` (default
``<warehouse dir>/published/crimecast.duckdb``, env ``CRIMECAST_PUBLISHED``). It reuses
``serving.publish.publish_copy`` (the dashboards' publisher). Readers (dashboards, the API,
analysts) open that copy read-only and so never see a half-written file nor block the
pipeline; a failed or killed run leaves the previous copy in
place (docs/reliability.md).

Blocking asset checks on ``[raw, incidents]``, one evaluation per city partition (they run
right after the city's load; when one fails with severity ERROR, the publish step does not run,
so the published copy keeps the last good state; its latest outcome per city is kept in
``meta.raw_check_results`` and the copy is refused while any city's latest ERROR check failed):

* ``volume``: the city has rows, and did not shrink by more than
  ``CRIMECAST_MAX_SHRINK_PCT`` (default 20) % nor lost days at its end (its last day earlier
  than before) since the previous passed check (``meta.raw_check_baselines``) while its
  configured input (``CRIMECAST_INPUT_<NAME>`` / the mapping's default) stayed the same. A
  shrink after the input was re-pointed elsewhere is expected and passes;
  ``CRIMECAST_FORCE_SHRINK=1`` accepts any shrink for one run.
* ``freshness``: the newest incident of the city is at most ``CRIMECAST_MAX_DATA_AGE_DAYS``
  days older than its load time. Unset (the default, e.g. for the historical sample data), the
  check only reports the age, with severity WARN.
"""

import os
import time
import warnings
from datetime import date
from pathlib import Path

import dagster as dg

from orchestration.defs.incidents.raw import INCIDENT_PARTITIONS, RAW_INCIDENTS
from orchestration.resources import RunDefaults, WarehouseResource

# the contract checks are partitioned like raw/incidents, a Dagster preview feature
# (docs/decisions.md, "One city is one partition"): said once there, not at every import
warnings.filterwarnings(
    "ignore", message="Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning
)

PUBLISHED = dg.AssetKey(["published", "warehouse"])
SHRINK_ENV = "CRIMECAST_MAX_SHRINK_PCT"
FORCE_SHRINK_ENV = "CRIMECAST_FORCE_SHRINK"
AGE_ENV = "CRIMECAST_MAX_DATA_AGE_DAYS"

#: dbt models the published copy waits for (when they exist in the manifest)
_DBT_MODELS = (
    "daily_counts",
    "daily_features",
    "incidents_data_quality",
    "france_annual_rates",
    "france_annual_features",
    "saopaulo_data_quality",
    "saopaulo_phone_theft_records",
)


def _upstream() -> list[dg.AssetKey]:
    """The marts readers use and every ml.* asset of the graph: the copy is published only
    after all of them succeeded in the run."""
    from dagster_dbt import get_asset_key_for_model

    from orchestration.defs.dbt import crimecast_dbt_assets
    from orchestration.defs.france.assets import france_assets
    from orchestration.defs.incidents.ml import ml_forecasts
    from orchestration.defs.saopaulo.assets import saopaulo_assets
    from orchestration.defs.serving.dbt_serving import serving_dbt_assets

    # raw/incidents itself: its blocking checks (volume, coverage, freshness) then hold this step
    keys = [RAW_INCIDENTS, dg.AssetKey(["raw", "source_files"]), dg.AssetKey(["raw", "sources"])]
    keys += [get_asset_key_for_model([crimecast_dbt_assets], m) for m in _DBT_MODELS]
    for d in [ml_forecasts, *france_assets, *saopaulo_assets]:
        keys += [k for k in d.keys if k.path[0] == "ml"]
    # the serving contract (dbt, after the ML assets): the copy snapshots those tables
    keys += sorted(serving_dbt_assets.keys, key=lambda k: k.path)
    return list(dict.fromkeys(keys))


def _publish(warehouse: Path, target: Path) -> Path:
    from serving.publish import publish_copy

    return publish_copy(warehouse, target)


def failed_blocking_checks(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """`<asset>:<check>: <why>` for every check of the run that failed with severity ERROR on
    a raw asset (the contract checks: volume, coverage, freshness)."""
    records = instance.get_records_for_run(
        run_id=run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=10_000
    ).records
    out = []
    for record in records:
        check = record.event_log_entry.dagster_event.event_specific_data
        if check.passed or check.severity != dg.AssetCheckSeverity.ERROR:
            continue
        if check.asset_key.path[0] != "raw":
            continue
        why = " ".join(str(check.description or "failed").split())
        out.append(f"{check.asset_key.to_user_string()}:{check.check_name}: {why}")
    return out


@dg.asset(
    key=PUBLISHED,
    deps=_upstream(),
    group_name="serving",
    kinds={"duckdb"},
    pool="warehouse_writer",
    description="Read-only copy of the allow-listed serving tables (serving/publish.py "
    "PUBLISHED_TABLES: no record-level data, small cells withheld, latest runs) for "
    "dashboards, the API and analysts; replaced atomically (new file, fsync, os.replace) only "
    "when every upstream asset of the run succeeded. Path: CRIMECAST_PUBLISHED, default "
    "<warehouse dir>/published/crimecast.duckdb.",
)
def published_warehouse(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    target = warehouse.paths.published
    failed = failed_blocking_checks(context.instance, context.run_id)
    # every city's latest contract checks too: a city blocked in its own run keeps the copy
    failed += [f for f in failed_raw_checks(Path(warehouse.path)) if f not in failed]
    if failed:
        # dbt models raw.incidents' source tests as checks of its own, so Dagster does not hold
        # the steps downstream of raw/incidents for its blocking checks: refuse here, once
        raise dg.Failure(
            description="publish: not published, the previous copy stays: " + "; ".join(failed)
        )
    t0 = time.perf_counter()
    try:
        out = _publish(Path(warehouse.path), target)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        raise dg.Failure(description=f"publish: {exc}") from None
    import duckdb

    con = duckdb.connect(str(out), read_only=True)
    try:
        tables = con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_type = 'BASE TABLE' order by 1"
        ).fetchall()
        withheld = con.execute(
            "select sum(rows_withheld_small_cells), sum(rows_withheld_old_runs) "
            "from serving.published_tables"
        ).fetchone()
    finally:
        con.close()
    secs = time.perf_counter() - t0
    context.log.info(f"published {warehouse.path} -> {out} in {secs:.1f} s")
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(out)),
            "size_mb": round(out.stat().st_size / 1e6, 1),
            "tables": [t[0] for t in tables],
            "seconds": round(secs, 1),
            "rows_withheld_small_cells": int(withheld[0] or 0),
            "rows_withheld_old_runs": int(withheld[1] or 0),
        }
    )


# --------------------------------------------------------------------------------------------
# raw contract checks


def _env_number(name: str, default: float | None) -> float | None:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError as exc:
        raise ValueError(f"{name}={value!r} must be a number") from exc


def _input_key(run_defaults: RunDefaults, source: str) -> str:
    return run_defaults.input_for(source) or "<mapping default>"


#: the contract checks' state in the warehouse itself (not in Dagster's event log): the
#: baseline of the volume check (the last passed evaluation per source) and the latest outcome
#: of every raw check per source, which the published copy waits for whichever run loaded it
_CHECK_TABLES = """
create schema if not exists meta;
create table if not exists meta.raw_check_baselines (
    source VARCHAR, rows BIGINT, input VARCHAR, last_day VARCHAR, checked_at TIMESTAMP
);
create table if not exists meta.raw_check_results (
    source VARCHAR, check_name VARCHAR, passed BOOLEAN, severity VARCHAR, description VARCHAR,
    checked_at TIMESTAMP
);
"""


def _previous_volume(con, source: str) -> dict:
    """rows / input / last_day of ``source`` at the last PASSED volume check on this warehouse
    (a failed one is no baseline: re-running the same shrunken input must fail again)."""
    con.execute(_CHECK_TABLES)
    row = con.execute(
        "select rows, input, last_day from meta.raw_check_baselines where source = ?", [source]
    ).fetchone()
    return {source: {"rows": row[0], "input": row[1], "last_day": row[2]}} if row else {}


def _record_check(con, source: str, result: dg.AssetCheckResult, name: str) -> None:
    con.execute(_CHECK_TABLES)
    con.execute(
        "delete from meta.raw_check_results where source = ? and check_name = ?", [source, name]
    )
    con.execute(
        "insert into meta.raw_check_results values (?, ?, ?, ?, ?, current_timestamp)",
        [source, name, result.passed, result.severity.value, result.description],
    )


def failed_raw_checks(warehouse: Path) -> list[str]:
    """`raw/incidents:<check>: <why>` for every source whose latest raw check failed with
    severity ERROR, whichever run evaluated it (a city's blocked load blocks the copy until the
    city passes again)."""
    import duckdb

    if not Path(warehouse).exists():
        return []
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        have = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'meta' and table_name = 'raw_check_results'"
        ).fetchone()[0]
        rows = (
            con.execute(
                "select check_name, description from meta.raw_check_results "
                "where not passed and severity = 'ERROR' order by source, check_name"
            ).fetchall()
            if have
            else []
        )
    finally:
        con.close()
    return [f"raw/incidents:{c}: {' '.join(str(d or 'failed').split())}" for c, d in rows]


def volume_problems(
    now: dict[str, int], inputs: dict[str, str], previous: dict, max_shrink_pct: float
) -> list[str]:
    """Why the volume check fails (empty = passes). `previous`: {source: {rows, input}}."""
    problems = [f"{s}: no rows in raw.incidents" for s, n in now.items() if n <= 0]
    for source, n in now.items():
        before = previous.get(source)
        if not before or before.get("input") != inputs.get(source):
            continue  # first load, or the input was re-pointed: a new baseline
        rows_before = int(before.get("rows") or 0)
        if rows_before > 0 and n < rows_before * (1 - max_shrink_pct / 100):
            problems.append(
                f"{source}: {n:,} rows, {100 * (1 - n / rows_before):.1f} % fewer than the "
                f"previous load ({rows_before:,}) of the same input {inputs.get(source)!r} "
                f"(limit {max_shrink_pct:g} %, {SHRINK_ENV})"
            )
    return problems


def coverage_problems(last_days: dict[str, str | None], inputs: dict[str, str], previous: dict):
    """Sources whose last day moved earlier than in the previous passed load of the same input
    (a body cut short, a release missing its latest weeks). `last_days`: {source: ISO date}."""
    problems = []
    for source, last in last_days.items():
        before = previous.get(source) or {}
        was = before.get("last_day")
        if not was or before.get("input") != inputs.get(source):
            continue  # first load, a baseline from before this check, or a re-pointed input
        if last is None or last < was:
            lost = (date.fromisoformat(was) - date.fromisoformat(last)).days if last else None
            problems.append(
                f"{source}: last day {last or '(none)'} is earlier than the previous load's "
                f"last day {was} of the same input {inputs.get(source)!r}"
                + (f" ({lost} days lost at the end)" if lost else "")
            )
    return problems


@dg.asset_check(
    asset=RAW_INCIDENTS,
    name="volume",
    blocking=True,
    partitions_def=INCIDENT_PARTITIONS,
    pool="warehouse_writer",
    description="The source has rows, did not shrink by more than "
    f"{SHRINK_ENV} (default 20) % and still reaches the previous load's last day (same input; "
    f"{FORCE_SHRINK_ENV}=1 accepts a shrink). Blocks dbt, ml and the published copy when it "
    "fails.",
)
def raw_incidents_volume(
    context: dg.AssetCheckExecutionContext,
    warehouse: WarehouseResource,
    run_defaults: RunDefaults,
) -> dg.AssetCheckResult:
    source = context.partition_key
    with warehouse.connect() as con:
        # the last day of rows dbt can keep: no filter_reason, not in the future (as staging's
        # implausible_date: more than 14 h after the load), so one bad date sets no baseline
        n, last_day = con.execute(
            "select count(*), max(occurred_at) filter (where "
            "filter_reason is null and occurred_at <= loaded_at + interval 14 hour)"
            "::date::varchar from raw.incidents where source = ?",
            [source],
        ).fetchone()
        now = {source: int(n)}
        inputs = {source: _input_key(run_defaults, source)}
        max_shrink = float(_env_number(SHRINK_ENV, 20.0))
        forced = os.environ.get(FORCE_SHRINK_ENV, "").strip().lower() in ("1", "true", "yes")
        previous = _previous_volume(con, source)
        # without a baseline volume_problems reports only a source with no rows: never forced
        problems = volume_problems(now, inputs, {}, max_shrink)
        shrinks = [
            p for p in volume_problems(now, inputs, previous, max_shrink) if p not in problems
        ]
        if n:
            shrinks += coverage_problems({source: last_day}, inputs, previous)
        if not forced:
            problems += [f"{p} ({FORCE_SHRINK_ENV}=1 accepts it for one run)" for p in shrinks]
        accepted = [f"accepted ({FORCE_SHRINK_ENV}=1): {p}" for p in shrinks] if forced else []
        result = dg.AssetCheckResult(
            passed=not problems,
            severity=dg.AssetCheckSeverity.ERROR,
            description="; ".join(problems or accepted)
            or f"{source} has rows, did not shrink nor lose days at its end",
            metadata={
                "rows": int(n),
                "input": inputs[source],
                "last_day": last_day or "none",
                "baseline_rows": int((previous.get(source) or {}).get("rows") or 0),
                "max_shrink_pct": max_shrink,
                "forced": forced,
            },
        )
        if result.passed:
            con.execute("delete from meta.raw_check_baselines where source = ?", [source])
            con.execute(
                "insert into meta.raw_check_baselines values (?, ?, ?, ?, current_timestamp)",
                [source, int(n), inputs[source], last_day],
            )
        _record_check(con, source, result, "volume")
    return result


@dg.asset_check(
    asset=RAW_INCIDENTS,
    name="freshness",
    blocking=True,
    partitions_def=INCIDENT_PARTITIONS,
    pool="warehouse_writer",
    description=f"The newest incident of the source is at most {AGE_ENV} days older than its "
    "load time (ERROR, blocking, when the variable is set; a WARN report otherwise).",
)
def raw_incidents_freshness(
    context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
) -> dg.AssetCheckResult:
    source = context.partition_key
    with warehouse.connect() as con:
        newest, age = con.execute(
            "select max(occurred_at)::varchar, date_diff('day', max(occurred_at), "
            "max(loaded_at)) from raw.incidents where source = ? and occurred_at is not null",
            [source],
        ).fetchone()
        limit = _env_number(AGE_ENV, None)
        age = int(age) if age is not None else None
        stale = limit is not None and (age is None or age > limit)
        result = dg.AssetCheckResult(
            passed=not stale if limit is not None else age is not None and age <= 7,
            severity=(
                dg.AssetCheckSeverity.ERROR if limit is not None else dg.AssetCheckSeverity.WARN
            ),
            description=(
                f"{source}: newest incident {age} days before the load (limit {limit:g})"
                if stale
                else "fresh"
                if limit is not None
                else f"{AGE_ENV} unset: age reported only ({source}: {age} days)"
            ),
            metadata={
                "age_days": age if age is not None else -1,
                "newest_incident": newest or "none",
                "max_age_days": limit,
            },
        )
        _record_check(con, source, result, "freshness")
    return result


#: crimecast's own checks of the raw layer (partitioned: they run in a city's load run)
RAW_CHECKS = (raw_incidents_volume, raw_incidents_freshness)
publish_assets = [published_warehouse, *RAW_CHECKS]
