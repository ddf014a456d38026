"""Issue 17, item 9: the mapping's cleaning policies that act in dbt (sources/README.md,
"Cleaning policies"): `dedupe`, `orphan_reversals` and `last_day`.

One small warehouse holds one source per case (each a mapping written here, files generated
here), loaded with the loader and built with dbt like the pipeline does: dedupe off keeps
repeated rows, dedupe keys and the survivor of a set of copies (latest-loaded file version,
then row number: never the file name), an orphan reversal dropped with a counted reason or
netted and clamped at 0 without failing the build, and the last day partial, complete or
judged by `auto`. The survivor sources get a second file later; the incremental build that
follows must equal a full refresh.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from conftest import run_dbt

from ingest.loader import load_source, mark_built, rebuild_window
from ingest.mapping import MappingError, load_mapping

REPO = Path(__file__).resolve().parents[1]
START = date(2023, 3, 1)
DAYS = 30  # START … START + 29
HEADER = ("id", "when", "district", "type", "n")
TABLES = (
    "intermediate.int_incidents__checked",
    "intermediate.int_incidents__kept",
    "intermediate.int_incidents__orphan_reversals",
    "intermediate.int_incidents__source_days",
    "marts.daily_counts",
    "marts.incidents_data_quality",
)

# ---------------------------------------------------------------------------------------------
# generators: a mapping and its files


def mapping_yaml(name: str, policies: str = "") -> str:
    """A city whose files have an id, a timestamp, a district, a type and a count."""
    return f"""
name: {name}
title: {name}
country: US
timezone: America/New_York
input: {name}
fields:
  incident_id: [id]
  area: [district]
  category: [type]
  count: [n]
timestamp:
  column: [when]
  formats: ["%Y-%m-%d %H:%M"]
required: [timestamp, area, category]
{policies}
"""


def row(day: int, hour: int, area: str = "A", ident: str = "", n: int = 1) -> list[str]:
    """One record on day `day` (0 = START) at `hour`."""
    when = f"{START + timedelta(days=day)} {hour:02d}:00"
    return [ident, when, area, "theft", str(n)]


def history(days: int = DAYS, per_day: int = 4, last_day: int | None = None) -> list[list[str]]:
    """`per_day` records a day (areas A and B, one hour each), `last_day` on the last day."""
    out = []
    for d in range(days):
        k = per_day if d < days - 1 or last_day is None else last_day
        out += [row(d, 1 + i, "AB"[i % 2], f"H{d}-{i}") for i in range(k)]
    return out


def csv_text(rows: list[list[str]]) -> str:
    return "".join(",".join(r) + "\n" for r in [list(HEADER), *rows])


@dataclass
class City:
    name: str
    policies: str
    files: dict[str, list[list[str]]]  # the first load
    later: dict[str, list[list[str]]] | None = None  # added by a second load


def cities() -> list[City]:
    """Every case: its mapping's policies and its files."""
    copies = [row(3, 10, "A", "C1"), row(3, 10, "A", "C1")]  # a complaint row per victim
    # the same record twice, as one department republishes it: another day and district
    first = [*history(), row(10, 20, "A", "C9")]
    second = [row(12, 20, "B", "C9")]
    # one load, two files: C5 is row 5 of one and row 1 of the other
    one = history(5)[:4] + [row(2, 22, "A", "C5")]
    other = [row(2, 23, "B", "C5"), *history(5)[4:]]
    # reversals: one with its record, one with none at its hour (area A, day 20: the day
    # keeps its records), three on area B day 21 (two records there: the day would net -1)
    reversals = [
        row(15, 9, "A", "R1"),
        row(15, 9, "A", "R1", n=-1),
        row(20, 23, "A", "", n=-1),
        *[row(21, 23, "B", "", n=-1) for _ in range(3)],
    ]
    return [
        City("dedupe_default", "", {"c.csv": [*history(), *copies]}),
        City("dedupe_off", "dedupe: off", {"c.csv": [*history(), *copies]}),
        # the later file's name sorts first in one city and last in the other
        City("survivor_x", "dedupe: {keys: [incident_id]}", {"z_first.csv": first},
             {"a_second.csv": second}),
        City("survivor_y", "dedupe: {keys: [incident_id]}", {"a_first.csv": first},
             {"z_second.csv": second}),
        City("same_a", "dedupe: {keys: [incident_id]}", {"a.csv": one, "b.csv": other}),
        City("same_b", "dedupe: {keys: [incident_id]}", {"a.csv": other, "b.csv": one}),
        City("orphans_drop", "", {"r.csv": [*history(), *reversals]}),
        City("orphans_net", "orphan_reversals: net", {"r.csv": [*history(), *reversals]}),
        City("last_partial", "", {"h.csv": history(last_day=4)}),
        City("last_complete", "last_day: complete", {"h.csv": history(last_day=1)}),
        City("last_auto_full", "last_day: auto", {"h.csv": history(last_day=3)}),
        City("last_auto_cut", "last_day: auto", {"h.csv": history(last_day=2)}),
    ]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# loading and building


def _dbt(warehouse: Path, target: Path, *args: str, command: str = "build"):
    """dbt on the models the policies act in (and their tests; daily_features is left out)."""
    # the rebuild window of the loads not built yet, as the Dagster dbt asset passes it
    con = duckdb.connect(str(warehouse))
    try:
        window = rebuild_window(con)
    finally:
        con.close()
    # in this process, on the session's parsed manifest (tests/conftest.py)
    done = run_dbt(
        warehouse, command, "--select", "+daily_counts", "+incidents_data_quality",
        *(("--indirect-selection", "cautious", "--exclude-resource-type", "unit_test")
          if command == "build" else ()),
        *(window.dbt_args() if "--full-refresh" not in args else ()), *args,
        target=target, env={"CRIMECAST_SERIES_PRESET": "", "CRIMECAST_MIN_YEAR": ""},
    )  # fmt: skip
    if done.returncode == 0:
        con = duckdb.connect(str(warehouse))
        try:
            mark_built(con, window)
        finally:
            con.close()
    return done


def _load(warehouse: Path, root: Path, city: City, files: dict[str, list[list[str]]]) -> None:
    folder = root / "data" / city.name
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        (folder / name).write_text(csv_text(rows))
    path = root / "sources" / f"{city.name}.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(mapping_yaml(city.name, city.policies))
    con = duckdb.connect(str(warehouse))
    try:
        load_source(con, load_mapping(path), str(folder))
    finally:
        con.close()


def _contents(warehouse: Path) -> dict[str, Counter[tuple]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {t: Counter(con.execute(f"select * from {t}").fetchall()) for t in TABLES}
    finally:
        con.close()


@dataclass
class Built:
    warehouse: Path
    root: Path
    first_build: subprocess.CompletedProcess[str]
    second_build: subprocess.CompletedProcess[str]
    before_second: dict[str, Counter[tuple]]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """Every city loaded and built; then the survivor cities' second files loaded and built
    incrementally."""
    root = tmp_path_factory.mktemp("policies")
    warehouse = root / "w" / "crimecast.duckdb"
    warehouse.parent.mkdir()
    for city in cities():
        _load(warehouse, root, city, city.files)
    first = _dbt(warehouse, root / "target")
    before = _contents(warehouse) if first.returncode == 0 else {}
    for city in cities():
        if city.later:
            _load(warehouse, root, city, {**city.files, **city.later})
    second = _dbt(warehouse, root / "target")
    yield Built(warehouse, root, first, second, before)


def _query(b: Built, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(b.warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _cleaning(b: Built, source: str) -> dict[str, int]:
    """{reason: rows} of incidents_data_quality, reasons with rows only."""
    return {
        reason: rows
        for reason, rows in _query(
            b, "select reason, rows from marts.incidents_data_quality where source = ?", [source]
        )
        if rows
    }


def _daily(b: Built, source: str) -> dict[tuple[str, date], tuple[int, int]]:
    """{(area, date): (incident_count, n_records)} of daily_counts."""
    return {
        (area, d): (n, records)
        for area, d, n, records in _query(
            b,
            "select area, date, incident_count, n_records from marts.daily_counts where source = ?",
            [source],
        )
    }


def _survivors(b: Built, source: str, incident_id: str) -> list[tuple[str, int]]:
    """(file name, row) of the kept copies of a record."""
    return [
        (Path(f).name, r)
        for f, r in _query(
            b,
            "select source_file, source_row from intermediate.int_incidents__checked "
            "where source = ? and incident_id = ? and drop_reason is null",
            [source, incident_id],
        )
    ]


def _day(n: int) -> date:
    return START + timedelta(days=n)


# ---------------------------------------------------------------------------------------------
# tests


def test_builds_pass_and_the_policies_reach_raw_sources(built: Built) -> None:
    assert built.first_build.returncode == 0, built.first_build.stdout[-3000:]
    assert built.second_build.returncode == 0, built.second_build.stdout[-3000:]
    got = {
        r[0]: r[1:]
        for r in _query(
            built, "select source, dedupe, dedupe_keys, orphan_reversals, last_day from raw.sources"
        )
    }
    assert got["dedupe_default"] == ("default", None, "drop", "partial")
    assert got["dedupe_off"] == ("off", None, "drop", "partial")
    assert got["survivor_x"] == ("keys", "incident_id", "drop", "partial")
    assert got["orphans_net"] == ("default", None, "net", "partial")
    assert got["last_auto_cut"] == ("default", None, "drop", "auto")


def test_dedupe_off_keeps_repeated_rows_the_default_drops_them(built: Built) -> None:
    base = DAYS * 4
    assert _cleaning(built, "dedupe_default") == {"kept": base + 1, "duplicate": 1}
    assert _cleaning(built, "dedupe_off") == {"kept": base + 2}
    assert _daily(built, "dedupe_off")[("A", _day(3))] == (2 + 2, 4)
    assert _daily(built, "dedupe_default")[("A", _day(3))] == (2 + 1, 3)


def test_dedupe_keys_keep_the_latest_loaded_copy_whatever_the_file_names(built: Built) -> None:
    for source, later in (("survivor_x", "a_second.csv"), ("survivor_y", "z_second.csv")):
        assert _survivors(built, source, "C9") == [(later, 1)], source
        assert _cleaning(built, source) == {"kept": DAYS * 4 + 1, "duplicate": 1}
        daily = _daily(built, source)
        # the copy in the first file (day 10, district A) no longer counts; the later one does
        assert daily[("A", _day(10))] == (2, 2) and daily[("B", _day(12))] == (3, 3)
        before = _daily_before(built, source)
        assert before[("A", _day(10))] == (3, 3) and before[("B", _day(12))] == (2, 2)


def _daily_before(b: Built, source: str) -> dict[tuple[str, date], tuple[int, int]]:
    """daily_counts of `source` after the first build (before the later files)."""
    return {
        (r[2], r[4]): (r[5], r[6]) for r in b.before_second["marts.daily_counts"] if r[0] == source
    }


def test_one_load_keeps_the_lowest_row_number_whatever_the_file_names(built: Built) -> None:
    # C5 is row 5 of one file and row 1 of the other; the two cities swap the file names
    assert _survivors(built, "same_a", "C5") == [("b.csv", 1)]
    assert _survivors(built, "same_b", "C5") == [("a.csv", 1)]
    for source in ("same_a", "same_b"):
        assert _cleaning(built, source) == {"kept": 5 * 4 + 1, "duplicate": 1}
        assert _daily(built, source)[("B", _day(2))] == (3, 3)


def test_an_orphan_reversal_is_dropped_and_counted(built: Built) -> None:
    assert _cleaning(built, "orphans_drop") == {"kept": DAYS * 4 + 2, "orphan_reversal": 4}
    orphans = _query(
        built,
        "select source_row, incident_count, n_original, orphan_reversals "
        "from intermediate.int_incidents__orphan_reversals "
        "where source = 'orphans_drop' order by 1",
    )
    first = DAYS * 4 + 3  # data rows: the history, then the reversal cases
    assert orphans == [(first + i, -1, 0, "drop") for i in range(4)]
    daily = _daily(built, "orphans_drop")
    assert daily[("A", _day(15))] == (2, 4)  # a record and its reversal net to 0
    assert daily[("A", _day(20))] == (2, 2) and daily[("B", _day(21))] == (2, 2)
    cleaning = _query(
        built,
        "select clamped_days, rows_read, rows_in_marts + rows_partial_last_day + rows_dropped "
        "from marts.incidents_data_quality where source = 'orphans_drop' and reason = 'kept'",
    )
    assert cleaning == [(0, DAYS * 4 + 6, DAYS * 4 + 6)]


def test_with_net_an_orphan_reversal_nets_its_day_and_a_negative_day_is_clamped(
    built: Built,
) -> None:
    assert _cleaning(built, "orphans_net") == {"kept": DAYS * 4 + 6}
    daily = _daily(built, "orphans_net")
    assert daily[("A", _day(20))] == (1, 3)  # two records, one orphan reversal: netted
    assert daily[("B", _day(21))] == (0, 5)  # two records, three reversals: -1 clamped at 0
    ((days, incidents, net_in_marts),) = _query(
        built,
        "select clamped_days, clamped_incidents, net_incidents_in_marts "
        "from marts.incidents_data_quality where source = 'orphans_net' and reason = 'kept'",
    )
    ((marts_sum,),) = _query(
        built, "select sum(incident_count) from marts.daily_counts where source = 'orphans_net'"
    )
    assert (days, incidents) == (1, 1)
    # the history without its last (partial) day; the pair nets 0; area A day 20 nets -1;
    # area B day 21 nets -3, of which 1 is clamped
    assert marts_sum == net_in_marts == (DAYS - 1) * 4 - 1 - 3 + 1
    listed = _query(
        built,
        "select count(*), min(orphan_reversals) from intermediate.int_incidents__orphan_reversals "
        "where source = 'orphans_net'",
    )
    assert listed == [(4, "net")]


def test_last_day_partial_complete_and_auto(built: Built) -> None:
    got = {
        r[0]: r[1:]
        for r in _query(
            built,
            "select source, last_day_complete, last_full_day, last_day_records, "
            "median_previous_28 from intermediate.int_incidents__source_days "
            "where source like 'last_%'",
        )
    }
    last, before = _day(DAYS - 1), _day(DAYS - 2)
    assert got["last_partial"] == (False, before, 4, 4.0)
    assert got["last_complete"] == (True, last, 1, 4.0)
    assert got["last_auto_full"] == (True, last, 3, 4.0)  # 3 >= 3/4 of 4
    assert got["last_auto_cut"] == (False, before, 2, 4.0)
    for source, included, records in (
        ("last_partial", False, 4),
        ("last_complete", True, 1),
        ("last_auto_full", True, 3),
        ("last_auto_cut", False, 2),
    ):
        dates = {d for (_a, d) in _daily(built, source)}
        assert max(dates) == (last if included else before), source
        partial, complete = _query(
            built,
            "select rows_partial_last_day, last_day_complete from marts.incidents_data_quality "
            "where source = ? and reason = 'kept'",
            [source],
        )[0]
        assert (partial, complete) == ((0, True) if included else (records, False)), source


def test_the_incremental_build_after_a_later_copy_equals_a_full_refresh(
    built: Built, tmp_path: Path
) -> None:
    assert built.second_build.returncode == 0, built.second_build.stdout[-3000:]
    windows = dict(
        _query(
            built,
            "select source, rebuild_from from raw.load_log as l where loaded_at = "
            "(select max(loaded_at) from raw.load_log where source = l.source) "
            "and source like 'survivor_%'",
        )
    )
    # `dedupe: {keys}` without the timestamp: a group can span any days, so the later copy
    # (day 12) has the whole source rebuilt, back to the first copy's group (day 10) and beyond
    assert windows == {"survivor_x": _day(0), "survivor_y": _day(0)}
    after = _contents(built.warehouse)
    full = tmp_path / "full" / "crimecast.duckdb"
    full.parent.mkdir()
    shutil.copyfile(built.warehouse, full)
    rebuilt = _dbt(full, tmp_path / "target", "--full-refresh", command="run")
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:]
    expected = _contents(full)
    for table in TABLES:
        assert after[table] == expected[table], (
            f"{table}: only incremental {list((after[table] - expected[table]).elements())[:3]}"
            f", only full refresh {list((expected[table] - after[table]).elements())[:3]}"
        )
    assert (
        after["intermediate.int_incidents__checked"]
        != built.before_second["intermediate.int_incidents__checked"]
    )


@pytest.mark.parametrize(
    ("policies", "message"),
    [
        ("dedupe: on", "dedupe: must be 'off', 'default' or {keys: [field, ...]}, got True"),
        ("dedupe: {keys: [victim]}", "dedupe.keys[0]: unknown field 'victim' (allowed: "),
        ("dedupe: {keys: [offense_code]}", "dedupe.keys[0]: field 'offense_code' is not mapped"),
        ("dedupe: {key: [incident_id]}", "dedupe.key: unknown key 'key' (allowed: keys)"),
        ("orphan_reversals: ignore", "orphan_reversals: must be one of drop, net, got 'ignore'"),
        ("last_day: full", "last_day: must be one of partial, complete, auto, got 'full'"),
    ],
)
def test_a_bad_policy_is_one_line_naming_the_mapping_and_key(
    tmp_path: Path, policies: str, message: str
) -> None:
    path = tmp_path / "sources" / "town.yml"
    path.parent.mkdir()
    path.write_text(mapping_yaml("town", policies))
    with pytest.raises(MappingError) as err:
        load_mapping(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text, text
