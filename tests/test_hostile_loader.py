"""Hostile inputs for the incident loader (issue 17): numbers that are not whole decimal numbers,
a 3 MB field, random bytes, a latin-1 file behind a UTF-8 BOM, a release in per-year folders,
date-range and negated filters, temporary folders of a killed load, and `crimecast
validate-source` reporting what dbt's cleaning would keep. Every input is generated here; each
rejection asserts a one-line message naming the file (line, column) and that the warehouse's
raw tables did not change."""

from __future__ import annotations

import copy
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from conftest import run_dbt

from ingest import loader
from ingest.loader import LoadError, load_source
from ingest.mapping import MappingError, SourceMapping, load_mapping
from ingest.preview import preview_source
from orchestration.cli import main

REPO = Path(__file__).resolve().parents[1]

CITY: dict[str, Any] = {
    "name": "city",
    "title": "Hostile city",
    "country": "US",
    "timezone": "America/New_York",
    "input": "data",
    "files": {"encodings": ["utf-8-sig", "latin-1"]},
    "fields": {
        "incident_id": ["Complaint"],
        "area": ["district"],
        "category": ["category"],
        "count": ["n"],
    },
    "timestamp": {"column": ["occurred"], "formats": ["%Y-%m-%d %H:%M:%S"]},
    "required": ["incident_id", "timestamp", "area", "count"],
}
HEADER = ["Complaint", "occurred", "district", "category", "n"]
HOURLY: dict[str, Any] = {
    **CITY,
    "fields": {"area": ["district"], "category": ["category"]},
    "timestamp": {"date": ["date"], "date_formats": ["%Y-%m-%d"], "hour": ["hour"]},
    "required": ["timestamp", "area"],
}


# --------------------------------------------------------------------------------------------
# generators


def mapping_for(tmp_path: Path, data: dict[str, Any] | None = None, **extra: Any) -> SourceMapping:
    data = {**copy.deepcopy(data or CITY), **extra}
    path = tmp_path / "repo" / "sources" / f"{data['name']}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load_mapping(path)


def csv_text(header: list[str], rows: list[list[str]]) -> str:
    return "".join(",".join(r) + "\n" for r in [header, *rows])


def incident(i: int, day: int = 5, *, area: str = "A1", cat: str = "Theft", n: str = "1") -> list:
    return [f"C{i}", f"2024-01-{day:02d} 10:{i % 60:02d}:00", area, cat, n]


def write(path: Path, data: str | bytes, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
    return path


def random_bytes(size: int, *, nul: bool, seed: int = 17) -> bytes:
    data = random.Random(seed).randbytes(size)
    return data if nul else data.replace(b"\x00", b"\x01")


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {
        t: con.execute(f"select * from raw.{t} order by all").fetchall()
        for t in ("incidents", "source_files", "sources", "file_hashes")
    }


def good_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    write(folder / "good.csv", csv_text(HEADER, [incident(i) for i in range(1, 4)]))
    return folder


def assert_rejected(
    con: duckdb.DuckDBPyConnection, mapping: SourceMapping, folder: Path, bad: Path
) -> LoadError:
    """Load `folder` (its good file already loaded, `bad` beside it): a one-line LoadError
    naming `bad`, and raw.* exactly as before."""
    before = snapshot(con)
    with pytest.raises(LoadError) as info:
        load_source(con, mapping, str(folder))
    err = info.value
    message = str(err)
    assert "\n" not in message and len(message) < 400, message
    assert message.startswith(f"{bad.resolve()}: ") and err.file == str(bad.resolve())
    assert snapshot(con) == before
    return err


@pytest.fixture
def loaded(
    tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection
) -> tuple[duckdb.DuckDBPyConnection, SourceMapping, Path]:
    """A warehouse holding a good load of `city` from `data/`."""
    mapping = mapping_for(tmp_path)
    folder = good_folder(tmp_path)
    load_source(warehouse_con, mapping, str(folder))
    assert warehouse_con.execute("select count(*) from raw.incidents").fetchone()[0] == 3
    return warehouse_con, mapping, folder


# --------------------------------------------------------------------------------------------
# strict numbers


@pytest.mark.parametrize("value", ["1.5", "2.4", "0x10", "1e3", "7.5", "1_000", "١", "2.0"])
def test_count_that_is_not_a_whole_decimal_number_is_rejected(loaded, value: str) -> None:
    con, mapping, folder = loaded
    # a quoted id over two lines (3 and 4): data row 3 is on line 5
    rows = [incident(10), ['"C11\nnote"', *incident(11)[1:]], incident(12, n=value)]
    bad = write(folder / "bad.csv", csv_text(HEADER, rows))
    err = assert_rejected(con, mapping, folder, bad)
    assert f"line 5 (data row 3), column 'n': count {value!r} is not a whole number" in str(err)
    assert (err.line, err.column) == (5, "n")


def test_count_out_of_range_is_rejected(loaded) -> None:
    con, mapping, folder = loaded
    bad = write(folder / "big.csv", csv_text(HEADER, [incident(10, n="99999999999")]))
    err = assert_rejected(con, mapping, folder, bad)
    assert "line 2 (data row 1), column 'n': count '99999999999' is out of range" in str(err)


def test_signed_whole_counts_load(tmp_path: Path, warehouse_con) -> None:
    mapping = mapping_for(tmp_path)
    f = write(
        tmp_path / "data" / "signs.csv",
        csv_text(HEADER, [incident(1, n="-1"), incident(2, n="+2"), incident(3, n=" 007 ")]),
    )
    load_source(warehouse_con, mapping, str(f))
    got = warehouse_con.execute(
        "select incident_count from raw.incidents order by source_row"
    ).fetchall()
    assert got == [(-1,), (2,), (7,)]


@pytest.mark.parametrize("hour", ["7.5", "0x5", "1e1", "+7", "24", "7h"])
def test_hour_that_is_not_a_whole_number_0_23_is_an_unparseable_timestamp(
    tmp_path: Path, warehouse_con, hour: str
) -> None:
    """Bad hours are counted (like an impossible date), not rounded: `7.5` was 08:00."""
    mapping = mapping_for(tmp_path, HOURLY)
    f = write(
        tmp_path / "data" / "hours.csv",
        "date,hour,district,category\n2024-01-05,07,A1,Theft\n"
        f"2024-01-05,{hour},A1,Theft\n2024-01-05,23,A1,Theft\n",
    )
    result = load_source(warehouse_con, mapping, str(f))
    got = warehouse_con.execute(
        "select occurred_at::VARCHAR, occurred_at_raw from raw.incidents order by source_row"
    ).fetchall()
    assert got == [
        ("2024-01-05 07:00:00", "2024-01-05 07"),
        (None, f"2024-01-05 {hour}"),
        ("2024-01-05 23:00:00", "2024-01-05 23"),
    ]
    assert result.rows_unparseable_timestamp == 1


def test_validate_source_counts_every_bad_hour_and_shows_it(tmp_path: Path) -> None:
    """The preview (dbt's cleaning models) counts each bad hour once, in one scratch build."""
    bad = ["7.5", "0x5", "1e1", "+7", "24", "7h"]
    mapping = mapping_for(tmp_path, HOURLY)
    rows = "".join(f"2024-01-05,{h},A1,Theft\n" for h in ["07", *bad, "23"])
    f = write(tmp_path / "data" / "hours.csv", "date,hour,district,category\n" + rows)
    report = preview_source(mapping.path, str(f))
    assert f"  unparseable_timestamp: {len(bad)}\n" in report
    for row, hour in enumerate(bad[:5], start=2):  # the report shows five examples
        assert f"hours.csv row {row}: '2024-01-05 {hour}'" in report


# --------------------------------------------------------------------------------------------
# a 3 MB field, random bytes


@pytest.mark.parametrize("row", [1, 3], ids=["first-row-python", "later-row-duckdb"])
def test_a_3_mb_field_is_rejected_plainly(loaded, row: int) -> None:
    con, mapping, folder = loaded
    rows = [incident(i) for i in range(10, 14)]
    rows[row - 1][3] = "x" * 3_000_000
    bad = write(folder / "huge.csv", csv_text(HEADER, rows))
    err = assert_rejected(con, mapping, folder, bad)
    assert str(err) == (
        f"{bad.resolve()}: line {row + 1}: a field is longer than the 2 MB the loader reads; "
        "is this the right file?"
    )
    assert err.line == row + 1


def test_random_bytes_without_nul_are_not_a_text_file(loaded) -> None:
    con, mapping, folder = loaded
    bad = write(folder / "noise.csv", random_bytes(4096, nul=False))
    err = assert_rejected(con, mapping, folder, bad)
    assert re.search(r": not a text file: \d+% of its first 1,024 characters", str(err))
    assert "(read as latin-1)" in str(err)


def test_random_bytes_with_nul_are_not_a_text_file(loaded) -> None:
    con, mapping, folder = loaded
    bad = write(folder / "noise.csv", random_bytes(4096, nul=True))
    err = assert_rejected(con, mapping, folder, bad)
    assert "NUL bytes (not a text file: binary data?)" in str(err) and err.line is not None


def test_gzip_file_is_named_as_such(loaded) -> None:
    import gzip

    con, mapping, folder = loaded
    body = csv_text(HEADER, [incident(i) for i in range(100)]).encode()
    bad = write(folder / "release.csv", gzip.compress(body, mtime=0))
    err = assert_rejected(con, mapping, folder, bad)
    assert "gzip-compressed? decompress it first" in str(err)


def test_accented_latin1_text_is_still_text(tmp_path: Path, warehouse_con) -> None:
    """The control-character test does not reject real 8-bit text."""
    mapping = mapping_for(tmp_path)
    rows = [incident(i, cat="Dégradation «véhicule» àéèêëïîôöùûüç") for i in range(5)]
    f = write(tmp_path / "data" / "fr.csv", csv_text(HEADER, rows), "latin-1")
    load_source(warehouse_con, mapping, str(f))
    assert warehouse_con.execute("select distinct category_raw from raw.incidents").fetchall() == [
        ("Dégradation «véhicule» àéèêëïîôöùûüç",)
    ]


# --------------------------------------------------------------------------------------------
# BOM whatever the encoding


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252"])
def test_utf8_bom_stripped_when_an_8bit_codec_decodes_the_file(
    tmp_path: Path, warehouse_con, encoding: str
) -> None:
    mapping = mapping_for(tmp_path, files={"encodings": ["utf-8", encoding]})
    body = csv_text(HEADER, [incident(1, area="Café"), incident(2, area="Zoé")])
    f = write(tmp_path / "data" / "bom.csv", b"\xef\xbb\xbf" + body.encode(encoding))
    load_source(warehouse_con, mapping, str(f))  # `Complaint` (required) is found
    got = warehouse_con.execute(
        "select incident_id, area from raw.incidents order by source_row"
    ).fetchall()
    assert got == [("C1", "Café"), ("C2", "Zoé")]
    enc = warehouse_con.execute("select encoding from raw.source_files").fetchone()[0]
    assert enc == encoding


def test_utf8_bom_before_an_ascii_only_codec(tmp_path: Path, warehouse_con) -> None:
    """The mark does not make a codec that cannot decode it fail."""
    mapping = mapping_for(tmp_path, files={"encodings": ["ascii"]})
    body = csv_text(HEADER, [incident(1)]).encode("ascii")
    f = write(tmp_path / "data" / "bom.csv", b"\xef\xbb\xbf" + body)
    load_source(warehouse_con, mapping, str(f))
    assert warehouse_con.execute("select incident_id from raw.incidents").fetchall() == [("C1",)]


# --------------------------------------------------------------------------------------------
# folders


def test_folder_input_is_searched_recursively_in_relative_path_order(
    tmp_path: Path, warehouse_con
) -> None:
    mapping = mapping_for(tmp_path)
    folder = tmp_path / "release"
    files = {
        "2020/02.csv": 3,
        "2019/12.csv": 2,
        "2019/01.csv": 1,
        "2019-summary.csv": 4,  # '-' sorts before '/', a folder's files stay together
        "top.csv": 5,
    }
    for rel, i in files.items():
        write(folder / rel, csv_text(HEADER, [incident(i)]))
    write(folder / "2019" / "._01.csv", random_bytes(400, nul=True))  # macOS metadata
    write(folder / ".git" / "x.csv", "not,a,mapping\n1,2,3\n")
    write(folder / "2019" / "notes.txt", "not a csv")
    result = load_source(warehouse_con, mapping, str(folder))
    expected = ["2019/01.csv", "2019/12.csv", "2019-summary.csv", "2020/02.csv", "top.csv"]
    assert result.files_loaded == [str((folder / rel).resolve()) for rel in expected]
    ids = warehouse_con.execute("select incident_id from raw.incidents order by all").fetchall()
    assert sorted(i for (i,) in ids) == sorted(f"C{i}" for i in files.values())
    # a pattern with a folder part scopes the search
    scoped = mapping_for(tmp_path, files={"pattern": "2019/*.csv"})
    result = load_source(warehouse_con, scoped, str(folder))
    assert result.files_loaded == [str((folder / r).resolve()) for r in expected[:2]]


# --------------------------------------------------------------------------------------------
# filters


def test_date_range_and_negated_filters(tmp_path: Path, warehouse_con) -> None:
    mapping = mapping_for(
        tmp_path,
        filters={
            "before_2019": {"field": "timestamp", "before": "2019-01-01"},
            "outside_2019_2023": {
                "field": "timestamp",
                "since": "2019-01-01",
                "before": "2024-01-01",
                "not": True,
            },
            "not_a_complaint": {"field": "incident_id", "matches": "^C", "not": True},
            "unknown_district": {"field": "area", "in": ["A1", "A2"], "not": True},
        },
    )
    rows = [
        ["C1", "2018-12-31 23:59:59", "A1", "Theft", "1"],  # before_2019
        ["C2", "2019-01-01 00:00:00", "A1", "Theft", "1"],  # kept: the range includes since
        ["C3", "2023-12-31 23:00:00", "A2", "Theft", "1"],  # kept
        ["C4", "2024-01-01 00:00:00", "A1", "Theft", "1"],  # outside: before is excluded
        ["X5", "2020-06-01 00:00:00", "A1", "Theft", "1"],  # not_a_complaint
        ["C6", "2020-06-01 00:00:00", "B9", "Theft", "1"],  # unknown_district
        ["C7", "someday", "A1", "Theft", "1"],  # no timestamp: no date filter matches
        ["", "2020-06-01 00:00:00", "", "Theft", "1"],  # missing values never match
    ]
    f = write(tmp_path / "data" / "f.csv", csv_text(HEADER, rows))
    result = load_source(warehouse_con, mapping, str(f))
    got = warehouse_con.execute(
        "select filter_reason from raw.incidents order by source_row"
    ).fetchall()
    assert [r for (r,) in got] == [
        "before_2019",
        None,
        None,
        "outside_2019_2023",
        "not_a_complaint",
        "unknown_district",
        None,
        None,
    ]
    assert result.rows_flagged == {
        "before_2019": 1,
        "not_a_complaint": 1,
        "outside_2019_2023": 1,
        "unknown_district": 1,
    }


def test_date_filter_on_a_date_plus_hour_timestamp_uses_local_time(
    tmp_path: Path, warehouse_con
) -> None:
    mapping = mapping_for(
        tmp_path, HOURLY, filters={"early": {"field": "timestamp", "before": "2024-01-05 06:00"}}
    )
    f = write(
        tmp_path / "data" / "h.csv",
        "date,hour,district,category\n2024-01-05,5,A1,T\n2024-01-05,6,A1,T\n",
    )
    load_source(warehouse_con, mapping, str(f))
    got = warehouse_con.execute("select filter_reason from raw.incidents order by 1").fetchall()
    assert got == [("early",), (None,)]


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"field": "area", "before": "2019-01-01"}, "use them with field: timestamp"),
        ({"field": "timestamp", "before": "2019-13-01"}, "before: must be a date or date-time"),
        ({"field": "timestamp", "since": "2020-01-01", "before": "2019-01-01"}, "must be earlier"),
        ({"field": "timestamp", "before": "2019-01-01T00:00+02:00"}, "has a UTC offset"),
        ({"field": "timestamp", "before": "2019-01-01", "matches": "x"}, "without matches"),
        ({"field": "area", "matches": "^A", "not": "yes"}, "not: must be true or false"),
    ],
)
def test_bad_filter_is_a_mapping_error(tmp_path: Path, spec: dict, fragment: str) -> None:
    with pytest.raises(MappingError, match=re.escape(fragment)) as info:
        mapping_for(tmp_path, filters={"f": spec})
    assert "city.yml: filters.f" in str(info.value)


# --------------------------------------------------------------------------------------------
# temporary folders


def _old(path: Path, seconds: float = 3600) -> Path:
    t = time.time() - seconds
    os.utime(path, (t, t))
    return path


def test_temporary_folders_of_an_interrupted_load_are_removed_at_the_next_load(
    tmp_path: Path, tmp_warehouse: Path
) -> None:
    mapping = mapping_for(tmp_path)
    folder = good_folder(tmp_path)
    tmp_parent = tmp_warehouse.parent / "tmp"
    # a load killed mid-transcode (SIGKILL: no cleanup) leaves its folder behind
    script = (
        "import os, sys, signal\n"
        "from pathlib import Path\n"
        "from ingest import loader\n"
        "def die(p, tmp_dir):\n"
        "    (tmp_dir / 'partial.utf8.csv').write_text('x')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "loader._transcode = die\n"
        "import duckdb\n"
        "from ingest.mapping import load_mapping\n"
        "con = duckdb.connect(sys.argv[1])\n"
        "loader.load_source(con, load_mapping(sys.argv[2]), sys.argv[3])\n"
    )
    latin = write(
        tmp_path / "latin" / "a.csv", csv_text(HEADER, [incident(1, area="é")]), "latin-1"
    )
    killed = subprocess.run(
        [sys.executable, "-c", script, str(tmp_warehouse), str(mapping.path), str(latin)],
        cwd=REPO,
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    (stray,) = tmp_parent.glob("crimecast-load-*")
    assert (stray / "partial.utf8.csv").exists()
    recent = tmp_parent / "crimecast-load-recent"
    recent.mkdir()
    other = tmp_parent / "someone-elses"
    other.mkdir()
    _old(other)

    con = duckdb.connect(str(tmp_warehouse))
    try:
        # a live load: locked, kept however old
        with loader._load_tmp_dir(tmp_parent) as live:
            _old(live)
            _old(stray)  # the killed load's folder, 10 minutes later
            load_source(con, mapping, str(folder))
            assert live.exists()
        assert not stray.exists()
        assert recent.exists(), "a folder modified in the last minutes may belong to a live load"
        assert other.exists()
        assert con.execute("select count(*) from raw.incidents").fetchone()[0] == 3
    finally:
        con.close()
    assert sorted(p.name for p in tmp_parent.iterdir()) == sorted([recent.name, other.name])


# --------------------------------------------------------------------------------------------
# validate-source: what dbt would keep


def _report_counts(report: str) -> dict[str, int]:
    """`  reason (note): 1,234` lines of the report's removed-rows section, and `kept`."""
    section = report[report.index("rows removed") : report.index("rows kept")]
    counts = {
        m.group(1): int(m.group(2).replace(",", ""))
        for m in re.finditer(r"^  (\w+)(?: \(.*\))?: ([\d,]+)$", section, re.M)
    }
    counts["kept"] = int(re.search(r"^rows kept: ([\d,]+)", report, re.M).group(1).replace(",", ""))
    return counts


def _release(folder: Path) -> Path:
    """Two monthly files: 14 categories, a test record, a duplicate across files, a reversal
    with its original and one without (an orphan), a row without area."""
    jan = [incident(i, day=1 + i % 20, cat=f"Cat{i % 14:02d}") for i in range(1, 41)]
    jan += [["TEST1", "2024-01-03 10:00:00", "A1", "Theft", "1"]]
    jan += [incident(50, day=9, cat="Robbery"), incident(50, day=9, cat="Robbery", n="-1")]
    jan += [incident(60, day=10, area="")]
    feb = [incident(5, day=1 + 5 % 20, cat=f"Cat{5:02d}")]  # a copy of January's C5
    feb += [incident(70, day=12, cat="Fraud", n="-1")]  # reverses nothing
    write(folder / "2024" / "01.csv", csv_text(HEADER, jan))
    write(folder / "2024" / "02.csv", csv_text(HEADER, feb))
    return folder


def test_validate_source_reports_after_filters(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    mapping = mapping_for(
        tmp_path, filters={"test_record": {"field": "incident_id", "matches": "^TEST"}}
    )
    folder = _release(tmp_path / "release")
    assert main(["validate-source", str(mapping.path), str(folder)]) == 0
    report = capsys.readouterr().out
    assert _report_counts(report) == {
        "test_record": 1,
        "unparseable_timestamp": 0,
        "implausible_date": 0,
        "missing_area": 1,
        "missing_category": 0,
        "duplicate": 1,
        "orphan_reversal": 1,
        "kept": 42,
    }
    assert "rows read: 46 " in report
    # the copy dbt dropped (January's C5 or its February copy), named by file and row
    dup = r"  duplicate examples \(a copy of a row that is kept\):\n    0[12]\.csv row \d+: id \S+"
    assert re.search(dup, report)
    assert "orphan reversals (a negative count with no original among the kept rows): 1" in report
    assert "days whose net count would be negative with every reversal netted: 1" in report
    assert "  2024-01-12 area A1, Fraud: net -1 (02.csv row 2)" in report
    # every category of the kept rows, none cut; not the filtered test record's
    cats = re.search(r"^categories of the rows kept \((\d+)\): (.*)$", report, re.M)
    assert cats and cats.group(1) == "15" and "more)" not in cats.group(2)
    assert all(f"Cat{i:02d}" in cats.group(2) for i in range(14)) and "Robbery 2" in cats.group(2)
    assert "Theft" not in cats.group(2) and "Fraud" not in cats.group(2)
    assert "date range of the rows kept: 2024-01-01 10:20:00 → 2024-01-20 10:39:00" in report


def test_validate_source_prints_a_rejection_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    mapping = mapping_for(tmp_path)
    bad = write(tmp_path / "data" / "huge.csv", csv_text(HEADER, [incident(1), ["x" * 3_000_000]]))
    assert main(["validate-source", str(mapping.path), str(bad)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"error: {bad.resolve()}: line 3: a field is longer than the 2 MB the loader reads; "
        "is this the right file?\n"
    )


# --------------------------------------------------------------------------------------------
# the preview's counts are dbt's


def test_preview_counts_equal_dbt(tmp_path: Path, tmp_warehouse: Path) -> None:
    """validate-source reports what dbt's cleaning does: on the same input (two sources,
    default and non-default policies) the counts per reason it prints equal those of
    incidents_data_quality in a warehouse the loader and dbt built as a run does."""
    folder = _release(tmp_path / "release")
    write(
        folder / "2024" / "03.csv",
        csv_text(
            HEADER,
            [
                incident(80, day=15),
                incident(80, day=15),  # a duplicate by either rule
                ["C81", "never", "A1", "T", "1"],
                incident(82, day=16),
                incident(82, day=17),  # a duplicate by incident_id alone
            ],
        ),
    )
    default = mapping_for(
        tmp_path / "a", filters={"test": {"field": "incident_id", "matches": "^T"}}
    )
    policies = mapping_for(
        tmp_path / "b",
        name="city_policies",
        dedupe={"keys": ["incident_id"]},
        orphan_reversals="net",
        last_day="complete",
        filters={"old": {"field": "timestamp", "before": "2024-01-02"}},
    )
    previews = {
        m.name: _report_counts(preview_source(m.path, str(folder))) for m in (default, policies)
    }
    con = duckdb.connect(str(tmp_warehouse))
    try:
        for m in (default, policies):
            load_source(con, m, str(folder))
    finally:
        con.close()
    # dbt in this process on the session's parsed manifest (tests/conftest.py)
    build = run_dbt(
        tmp_warehouse, "build", "--select", "category_map", "+incidents_data_quality",
        "--resource-type", "model", "--resource-type", "seed",
        target=tmp_path / "target", env={"CRIMECAST_MIN_YEAR": ""},
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-3000:]
    con = duckdb.connect(str(tmp_warehouse), read_only=True)
    try:
        cleaning = con.execute(
            "select source, reason, rows from marts.incidents_data_quality"
        ).fetchall()
    finally:
        con.close()
    from_dbt: dict[str, dict[str, int]] = {}
    for source, reason, n in cleaning:
        from_dbt.setdefault(source, {})[reason] = int(n)
    assert from_dbt == previews
    assert previews["city"]["duplicate"] == 2 and previews["city_policies"]["duplicate"] == 3
    assert previews["city"]["orphan_reversal"] == 1 and previews["city_policies"]["old"] == 2
