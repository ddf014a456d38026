"""An incremental dbt build equals a full rebuild.

int_incidents__checked, daily_counts and daily_features are incremental models (see their
headers). A small warehouse is built (Houston and Boston samples), a new day's file is added to
Houston and the models are built incrementally; the same warehouse, copied, is then rebuilt
with `--full-refresh`. Every incident table must be identical in both, row for row.

The new file is what a daily extract brings, plus the cases that reach back into built rows:
  * the next day's incidents: the previous last (partial) day becomes a full day;
  * a late record on that previous last day;
  * a reversal (-1) of a record of an earlier day: an old daily count changes;
  * a republished record: the file name sorts before the original files, so in a full build
    the ORIGINAL row becomes the duplicate; the incremental build has to recompute it.

The loader writes per load the earliest day whose rows changed (raw.load_log); the window of
the loads not built yet is passed to dbt as the var rebuild_from, as the Dagster dbt asset
does (ingest.loader.rebuild_window / mark_built). The tests check that window too, that a
model left behind catches up at its next build, and what scoping the mart tests to the
window means.
"""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import duckdb
from conftest import run_dbt

from ingest.loader import load_source, mark_built, rebuild_window
from ingest.mapping import load_mapping
from samples.incidents import write_houston, write_sample

REPO = Path(__file__).resolve().parents[1]
SELECT = ("+daily_features", "+incidents_data_quality")
HOUSTON_START = date(2023, 1, 1)
HOUSTON_DAYS = 90
TABLES = (
    "intermediate.int_incidents__checked",
    "intermediate.int_incidents__kept",
    "intermediate.int_incidents__series",
    "marts.daily_counts",
    "marts.daily_features",
    "marts.incidents_data_quality",
)


def _dbt(
    warehouse: Path,
    target: Path,
    *args: str,
    command: str = "build",
    select: tuple[str, ...] = SELECT,
):
    """dbt with the rebuild window of the loads not built yet (raw.load_log), marked built
    after a successful build of every model, as the Dagster dbt asset does."""
    window = _window(warehouse)
    # in this process, on the session's parsed manifest (tests/conftest.py)
    done = run_dbt(
        warehouse, command, "--select", *select,
        *(window.dbt_args() if "--full-refresh" not in args else ()), *args,
        target=target, env={"CRIMECAST_SERIES_PRESET": "", "CRIMECAST_MIN_YEAR": ""},
    )  # fmt: skip
    if done.returncode == 0 and command == "build" and select == SELECT:
        con = duckdb.connect(str(warehouse))
        try:
            mark_built(con, window)
        finally:
            con.close()
    return done


def _window(warehouse: Path):
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return rebuild_window(con)
    finally:
        con.close()


def _load(warehouse: Path, source: str, folder: Path) -> None:
    con = duckdb.connect(str(warehouse))
    try:
        load_source(con, load_mapping(REPO / "sources" / f"{source}.yml"), str(folder))
    finally:
        con.close()


def _contents(warehouse: Path) -> dict[str, Counter[tuple]]:
    """Each table as a multiset of rows (floats rounded: window sums may differ in the last
    bits with the evaluation order)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {
            table: Counter(
                tuple(round(v, 9) if isinstance(v, float) else v for v in row)
                for row in con.execute(f"select * from {table}").fetchall()
            )
            for table in TABLES
        }
    finally:
        con.close()


def _assert_equals_full_refresh(
    warehouse: Path, after: dict[str, Counter[tuple]], tmp_path: Path
) -> None:
    """A copy of `warehouse` rebuilt with --full-refresh has the tables `after` holds."""
    full = tmp_path / "full" / "crimecast.duckdb"
    full.parent.mkdir()
    shutil.copyfile(warehouse, full)
    rebuilt = _dbt(full, tmp_path / "target_full", "--full-refresh")
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:]
    expected = _contents(full)
    for table in TABLES:
        only_incremental = after[table] - expected[table]
        only_full = expected[table] - after[table]
        assert not only_incremental and not only_full, (
            f"{table}: incremental build differs from --full-refresh; "
            f"only in incremental {list(only_incremental.elements())[:5]}, "
            f"only in full refresh {list(only_full.elements())[:5]}"
        )


def _new_day_file(folder: Path, scratch: Path) -> Path:
    """The next day's Houston file, with a late record, a reversal and a republished record."""
    last_day = HOUSTON_START + timedelta(days=HOUSTON_DAYS - 1)
    next_day = last_day + timedelta(days=1)
    (generated,) = write_houston(scratch, scale=0.3, seed=7, start=next_day, days=1)
    with generated.open(newline="") as fh:
        header, *rows = list(csv.reader(fh))
    with (folder / f"houston_{HOUSTON_START.year}.csv").open(newline="") as fh:
        old_rows = list(csv.reader(fh))[1:]
    col = {name: i for i, name in enumerate(header)}
    last = f"{last_day.month}/{last_day.day}/{last_day.year}"
    late = next(r for r in old_rows if r[col["date"]] == last)[:]
    late[col["hour"]] = "23"
    reversal = next(r for r in old_rows[len(old_rows) // 2 :] if r[col["number"]] == "1")[:]
    reversal[col["number"]] = "-1"
    republished = old_rows[len(old_rows) // 3]
    path = folder / f"houston_{HOUSTON_START.year}-0_update.csv"  # '-' sorts before '.'
    with path.open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows([header, *rows, late, reversal, republished])
    return path


def _csv_dates(path: Path) -> list[date]:
    """The days of a Houston file's rows (column `date`, m/d/yyyy)."""
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    days = []
    for row in rows:
        month, day, year = (int(x) for x in row["date"].split("/"))
        days.append(date(year, month, day))
    return days


def rows_of_source(contents: dict[str, Counter[tuple]], source: str) -> list[tuple]:
    """daily_counts rows of one source."""
    return [row for row in contents["marts.daily_counts"] if row[0] == source]


def test_incremental_build_equals_full_refresh(tmp_path: Path) -> None:
    incremental = tmp_path / "incremental" / "crimecast.duckdb"
    incremental.parent.mkdir()
    folders = {"houston": tmp_path / "houston", "boston": tmp_path / "boston"}
    write_houston(folders["houston"], scale=0.3, start=HOUSTON_START, days=HOUSTON_DAYS)
    write_sample("boston", folders["boston"], scale=0.05, years=1)
    for source, folder in folders.items():
        _load(incremental, source, folder)
    target = tmp_path / "target"
    first = _dbt(incremental, target)
    assert first.returncode == 0, first.stdout[-3000:]
    before = _contents(incremental)

    new_file = _new_day_file(folders["houston"], tmp_path / "scratch")
    _load(incremental, "houston", folders["houston"])
    # the window: houston from the new file's earliest day (the reversal), boston unchanged
    window = _window(incremental)
    earliest_new = min(_csv_dates(new_file))
    assert window.days == {"houston": earliest_new} and not window.full_refresh, window
    last_before = max(d for (_s, _id, _a, _c, d, *_rest) in rows_of_source(before, "houston"))
    assert earliest_new < last_before  # the reversal reached back
    second = _dbt(incremental, target)
    assert second.returncode == 0, second.stdout[-3000:]
    # the second build took the incremental path of every incremental model, with the window
    for model, marker in (
        ("intermediate/incidents/int_incidents__checked.sql", "the rebuild window's raw rows"),
        ("marts/incidents/daily_counts.sql", "built_series as ("),
        ("marts/incidents/daily_features.sql", "built_codes as ("),
    ):
        compiled = next((target / "compiled").rglob(model)).read_text()
        assert marker in compiled, f"{model} was not built incrementally"
        assert f"cast('{earliest_new.isoformat()}' as date)" in compiled, model
    after = _contents(incremental)
    con = duckdb.connect(str(incremental), read_only=True)
    try:
        files = [r[0] for r in con.execute("select source_file from raw.source_files").fetchall()]
    finally:
        con.close()
    assert str(new_file) in files
    assert _window(incremental).days == {}  # built

    _assert_equals_full_refresh(incremental, after, tmp_path)
    # the new file changed what was built before (else the comparison proves little)
    changed = ("intermediate.int_incidents__checked", "marts.daily_counts", "marts.daily_features")
    for table in changed:
        assert after[table] != before[table], f"{table} did not change"


def _houston_warehouse(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A Houston sample warehouse built once (first build: everything)."""
    warehouse = tmp_path / "w" / "crimecast.duckdb"
    warehouse.parent.mkdir()
    folder = tmp_path / "houston"
    write_houston(folder, scale=0.3, start=HOUSTON_START, days=HOUSTON_DAYS)
    _load(warehouse, "houston", folder)
    target = tmp_path / "target"
    first = _dbt(warehouse, target)
    assert first.returncode == 0, first.stdout[-3000:]
    assert _window(warehouse).days == {}  # the first build covered the load
    return warehouse, folder, target


def test_a_model_left_behind_catches_up(tmp_path: Path) -> None:
    """daily_features is not built while daily_counts takes a new file (say its build was
    skipped after a failed test): the window keeps that file's day until a complete build, so
    the next one rebuilds from the earliest day of both files and equals a full refresh."""
    warehouse, folder, target = _houston_warehouse(tmp_path)
    first_file = _new_day_file(folder, tmp_path / "scratch")  # reaches back (a reversal)
    _load(warehouse, "houston", folder)
    only_counts = _dbt(
        warehouse, target, "--indirect-selection", "cautious", select=("+daily_counts",)
    )
    assert only_counts.returncode == 0, only_counts.stdout[-3000:]
    # a partial build marks nothing: the first file's day stays in the window
    assert _window(warehouse).days == {"houston": min(_csv_dates(first_file))}

    next_day = HOUSTON_START + timedelta(days=HOUSTON_DAYS + 1)
    (generated,) = write_houston(tmp_path / "scratch2", scale=0.3, seed=8, start=next_day, days=1)
    shutil.copyfile(generated, folder / f"houston_{HOUSTON_START.year}-1_next.csv")
    _load(warehouse, "houston", folder)
    # daily_features also rebuilds what it missed, back to the first file's earliest day
    assert _window(warehouse).days == {"houston": min(_csv_dates(first_file))}
    both = _dbt(warehouse, target)
    assert both.returncode == 0, both.stdout[-3000:]

    _assert_equals_full_refresh(warehouse, _contents(warehouse), tmp_path)


def test_incremental_build_tests_only_the_rewritten_days(tmp_path: Path) -> None:
    """The trade-off of scoping the mart tests to the rewritten days (docs/reliability.md):
    an old row broken behind dbt's back is not re-checked by an incremental build, and is
    caught by a plain `dbt test` (every row) or a full refresh."""
    warehouse, folder, target = _houston_warehouse(tmp_path)
    con = duckdb.connect(str(warehouse))
    try:
        broken = con.execute(
            "update marts.daily_counts set is_filled = true "
            "where date = (select min(date) from marts.daily_counts) and incident_count > 0 "
            "returning series_id"
        ).fetchall()
    finally:
        con.close()
    assert broken
    _new_day_file(folder, tmp_path / "scratch")
    _load(warehouse, "houston", folder)
    incremental = _dbt(warehouse, target)
    assert incremental.returncode == 0, incremental.stdout[-3000:]

    plain = _dbt(warehouse, target, command="test", select=("daily_counts",))
    assert plain.returncode != 0
    assert "FAIL" in plain.stdout and "not_is_filled_or_incident_count_0" in plain.stdout


def test_the_loader_logs_the_window_of_each_load(tmp_path: Path) -> None:
    """raw.load_log without dbt: a new file's earliest day; a reload of unchanged files
    nothing; a removed file that leaves days without rows a full refresh."""
    warehouse = tmp_path / "crimecast.duckdb"
    folder = tmp_path / "houston"
    write_houston(folder, scale=0.3, start=HOUSTON_START, days=HOUSTON_DAYS)
    _load(warehouse, "houston", folder)
    con = duckdb.connect(str(warehouse))
    try:
        mark_built(con, rebuild_window(con))
    finally:
        con.close()
    _load(warehouse, "houston", folder)
    assert _window(warehouse).days == {}
    new_file = _new_day_file(folder, tmp_path / "scratch")
    _load(warehouse, "houston", folder)
    assert _window(warehouse).days == {"houston": min(_csv_dates(new_file))}
    new_file.unlink()  # its next day had no other rows
    _load(warehouse, "houston", folder)
    window = _window(warehouse)
    assert window.full_refresh and window.dbt_args() == ["--full-refresh"]
