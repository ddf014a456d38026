"""The generic loader: encodings, headers, file-level errors, mirror semantics, URLs, time
zones, counts, an "odd city" defined by YAML alone, and the real Boston / Houston extracts."""

from __future__ import annotations

import copy
import csv
import functools
import http.server
import json
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from ingest.loader import LoadError, LoadResult, load_source
from ingest.mapping import SourceMapping, load_mapping
from ingest.preview import preview_source

REPO_ROOT = Path(__file__).resolve().parents[1]

CITY: dict[str, Any] = {
    "name": "city",
    "title": "Test city",
    "country": "US",
    "timezone": "America/New_York",
    "input": "data",
    "files": {"delimiter": ",", "encodings": ["utf-8-sig", "latin-1"]},
    "fields": {
        "incident_id": ["id", "Incident Number"],
        "area": ["district", "zone"],
        "category": ["category", "offense type"],
        "offense_code": ["code"],
        "offense_description": ["description"],
        "count": ["n"],
    },
    "timestamp": {
        "column": ["occurred", "occurred on"],
        "formats": ["%Y-%m-%d %H:%M:%S", "%d/%m/%Y %H:%M"],
    },
    "filters": {"test_record": {"field": "incident_id", "matches": "^TEST"}},
    "required": ["incident_id", "timestamp", "area"],
}
HEADER = "id,occurred,district,category,code,description\n"


def make_mapping(tmp_path: Path, data: dict[str, Any] | None = None) -> SourceMapping:
    data = copy.deepcopy(data or CITY)
    folder = tmp_path / "repo" / "sources"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{data['name']}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load_mapping(path)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def rows(con: duckdb.DuckDBPyConnection, cols: str = "*", where: str = "true") -> list[tuple]:
    return con.execute(
        f"select {cols} from raw.incidents where {where} order by source_file, source_row"
    ).fetchall()


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {
        t: con.execute(f"select * from raw.{t} order by all").fetchall()
        for t in ("incidents", "source_files", "sources")
    }


# --------------------------------------------------------------------------------------------
# basics and encodings


def test_load_basic_file(tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection) -> None:
    m = make_mapping(tmp_path)
    f = write(
        tmp_path / "data" / "a.csv",
        HEADER
        + "1, 2024-01-05 10:30:00 ,A1,Theft,0619, THEFT FROM CAR \n"
        + "2,05/01/2024 23:15,  ,Robbery,,\n"
        + "TEST1,2024-01-06 00:00:00,A1,Theft,0619,test\n",
    )
    result = load_source(warehouse_con, m, str(f))
    assert isinstance(result, LoadResult)
    assert result.rows_inserted == 3 and result.files_loaded == [str(f.resolve())]
    assert result.rows_flagged == {"test_record": 1}
    assert result.min_occurred_at == datetime(2024, 1, 5, 10, 30)
    assert result.max_occurred_at == datetime(2024, 1, 6)
    got = rows(
        warehouse_con,
        "incident_id, occurred_at, occurred_at_raw, area, category_raw, "
        "offense_code, offense_description, incident_count, filter_reason, source_row",
    )
    assert got == [
        (
            "1",
            datetime(2024, 1, 5, 10, 30),
            "2024-01-05 10:30:00",
            "A1",
            "Theft",
            "0619",
            "THEFT FROM CAR",
            1,
            None,
            1,
        ),
        (
            "2",
            datetime(2024, 1, 5, 23, 15),
            "05/01/2024 23:15",
            None,
            "Robbery",
            None,
            None,
            1,
            None,
            2,
        ),
        (
            "TEST1",
            datetime(2024, 1, 6),
            "2024-01-06 00:00:00",
            "A1",
            "Theft",
            "0619",
            "test",
            1,
            "test_record",
            3,
        ),
    ]
    files = warehouse_con.execute("select * from raw.source_files").fetchall()
    assert len(files) == 1 and files[0][0] == "city" and files[0][3] == "utf-8"
    assert files[0][4] == 3 and len(files[0][2]) == 64
    src = warehouse_con.execute(
        "select source, title, country, timezone, mapping_sha256 from raw.sources"
    ).fetchall()
    assert src == [("city", "Test city", "US", "America/New_York", m.sha256)]
    meta = result.to_metadata()
    assert json.loads(json.dumps(meta)) == meta
    assert meta["min_occurred_at"] == "2024-01-05 10:30:00" and meta["rows_inserted"] == 3


@pytest.mark.parametrize(
    ("encoding", "recorded"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("latin-1", "latin-1")],
)
def test_encodings(
    tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection, encoding: str, recorded: str
) -> None:
    m = make_mapping(tmp_path)
    f = write(
        tmp_path / "data" / "e.csv",
        HEADER + "1,2024-01-05 10:30:00,A1,Théft,1,CAFÉ ÀÉÎ\n",
        encoding,
    )
    load_source(warehouse_con, m, str(f))
    assert rows(warehouse_con, "incident_id, category_raw, offense_description") == [
        ("1", "Théft", "CAFÉ ÀÉÎ")
    ]  # BOM not glued to the first header; accents intact
    assert warehouse_con.execute("select encoding from raw.source_files").fetchone()[0] == recorded


def test_mixed_encodings_per_file_in_a_folder(
    tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection
) -> None:
    data = copy.deepcopy(CITY)
    data["files"]["encodings"] = ["utf-8-sig", "cp1252", "latin-1"]
    m = make_mapping(tmp_path, data)
    line = "{i},2024-02-0{i} 08:00:00,B{i},Vol à l’étalage,{i},desc\n"
    write(tmp_path / "data" / "1.csv", HEADER + line.format(i=1), "utf-8")
    write(tmp_path / "data" / "2.csv", HEADER + line.format(i=2), "utf-8-sig")
    write(tmp_path / "data" / "3.csv", HEADER + line.format(i=3), "cp1252")
    # byte 0x90 is undefined in cp1252, so this file falls through to latin-1
    write(tmp_path / "data" / "4.csv", HEADER + line.format(i=4).replace("’", "\x90"), "latin-1")
    result = load_source(warehouse_con, m, str(tmp_path / "data"))
    assert len(result.files_loaded) == 4
    enc = warehouse_con.execute(
        "select regexp_extract(source_file, '(\\d)\\.csv', 1), encoding from raw.source_files "
        "order by 1"
    ).fetchall()
    assert enc == [("1", "utf-8"), ("2", "utf-8-sig"), ("3", "cp1252"), ("4", "latin-1")]
    cats = [r[0] for r in rows(warehouse_con, "category_raw")]
    assert cats == ["Vol à l’étalage"] * 3 + ["Vol à l\x90étalage"]


def test_undecodable_file_names_file_and_position(
    tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection
) -> None:
    data = copy.deepcopy(CITY)
    data["files"]["encodings"] = ["utf-8"]
    m = make_mapping(tmp_path, data)
    f = write(
        tmp_path / "data" / "bad.csv", HEADER + "1,2024-01-05 10:30:00,A1,Caf\xe9,1,d\n", "latin-1"
    )
    with pytest.raises(LoadError) as exc:
        load_source(warehouse_con, m, str(f))
    msg = str(exc.value)
    assert "bad.csv" in msg and "cannot decode" in msg and "(line 2)" in msg


def test_header_aliases_case_whitespace_and_extra_columns(
    tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection
) -> None:
    m = make_mapping(tmp_path)
    write(tmp_path / "data" / "2019.csv", HEADER + "1,2019-03-01 12:00:00,A1,Theft,1,x\n")
    # a later release: renamed / reordered / differently cased headers and extra columns
    write(
        tmp_path / "data" / "2020.csv",
        " Incident Number ,EXTRA,Zone,OFFENSE_TYPE,Occurred_On,weather\n"
        "2,ignored,C11,Burglary,2020-03-01 12:00:00,rain\n",
    )
    load_source(warehouse_con, m, str(tmp_path / "data"))
    assert rows(warehouse_con, "incident_id, area, category_raw, offense_code, occurred_at") == [
        ("1", "A1", "Theft", "1", datetime(2019, 3, 1, 12)),
        ("2", "C11", "Burglary", None, datetime(2020, 3, 1, 12)),  # code column absent: NULL
    ]


def test_quoted_fields_with_delimiters_and_newlines(
    tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection
) -> None:
    m = make_mapping(tmp_path)
    f = write(
        tmp_path / "data" / "q.csv",
        HEADER.replace("\n", "\r\n")
        + '1,2024-01-05 10:30:00,A1,"Theft, petty",1,"two\nlines ""quoted"""\r\n'
        + "2,2024-01-05 11:30:00,A1,Theft,1,x\r\n",
    )
    load_source(warehouse_con, m, str(f))
    assert rows(warehouse_con, "category_raw, offense_description, source_row") == [
        ("Theft, petty", 'two\nlines "quoted"', 1),
        ("Theft", "x", 2),
    ]


# --------------------------------------------------------------------------------------------
# file-level errors


def test_missing_required_column(tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection) -> None:
    m = make_mapping(tmp_path)
    f = write(
        tmp_path / "data" / "nodistrict.csv", "id,occurred,category\n1,2024-01-05 10:30:00,Theft\n"
    )
    with pytest.raises(LoadError) as exc:
        load_source(warehouse_con, m, str(f))
    msg = str(exc.value)
    assert "nodistrict.csv" in msg and "required field 'area' not found" in msg
    assert "'district', 'zone'" in msg  # the aliases tried
    assert exc.value.file == str(f.resolve()) and exc.value.column == "district"


def test_wrong_delimiter(tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection) -> None:
    m = make_mapping(tmp_path)
    f = write(
        tmp_path / "data" / "semi.csv",
        HEADER.replace(",", ";") + "1;2024-01-05 10:30:00;A1;Theft;1;x\n",
    )
    with pytest.raises(LoadError) as exc:
        load_source(warehouse_con, m, str(f))
    assert "semi.csv" in str(exc.value)
    assert "looks like the delimiter is ';' not ','" in str(exc.value)


def test_empty_and_header_only_files(
    tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection
) -> None:
    m = make_mapping(tmp_path)
    empty = write(tmp_path / "data" / "empty.csv", "")
    with pytest.raises(LoadError, match=r"empty\.csv: file is empty"):
        load_source(warehouse_con, m, str(empty))
    blank = write(tmp_path / "data2" / "blank.csv", "\n\n  \n")
    with pytest.raises(LoadError, match=r"blank\.csv: file is empty"):
        load_source(warehouse_con, m, str(blank))
    header_only = write(tmp_path / "data3" / "header.csv", HEADER + "\n")
    with pytest.raises(LoadError, match=r"header\.csv: file has a header but no data rows"):
        load_source(warehouse_con, m, str(header_only))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "1,2024-01-05 10:30:00,A1,Theft,1,x\n2,2024-01-05 10:30:00,A1\n",
            "line 3: truncated row: expected 6 columns (as in the header), found 3",
        ),
        (
            "1,2024-01-05 10:30:00,A1,Theft,1,x,extra\n",
            "line 2: row has extra fields: expected 6 columns",
        ),
        (
            '1,2024-01-05 10:30:00,A1,Theft,1,x\n2,2024-01-05,A1,"Theft,1,x\n',
            "unterminated quoted field",
        ),
    ],
)
def test_malformed_rows(
    tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection, body: str, expected: str
) -> None:
    m = make_mapping(tmp_path)
    f = write(tmp_path / "data" / "cut.csv", HEADER + body)
    with pytest.raises(LoadError) as exc:
        load_source(warehouse_con, m, str(f))
    assert "cut.csv" in str(exc.value) and expected in str(exc.value)
    assert warehouse_con.execute("select count(*) from raw.incidents").fetchone()[0] == 0


def test_non_numeric_count_is_an_error(
    tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection
) -> None:
    m = make_mapping(tmp_path)
    f = write(
        tmp_path / "data" / "n.csv",
        "id,occurred,district,n\n1,2024-01-05 10:30:00,A1,1\n2,2024-01-05 10:30:00,A1,two\n",
    )
    with pytest.raises(LoadError) as exc:
        load_source(warehouse_con, m, str(f))
    assert "n.csv: line 3 (data row 2), column 'n': count 'two' is not a whole number" in str(
        exc.value
    )
    assert (exc.value.line, exc.value.column) == (3, "n")


def test_missing_input(tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection) -> None:
    m = make_mapping(tmp_path)
    with pytest.raises(LoadError, match="does not exist"):
        load_source(warehouse_con, m, str(tmp_path / "nope.csv"))
    with pytest.raises(LoadError, match="no files match the glob"):
        load_source(warehouse_con, m, str(tmp_path / "*.nothing"))


# --------------------------------------------------------------------------------------------
# timestamps and counts


def test_unparseable_timestamps_counted(
    tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection
) -> None:
    m = make_mapping(tmp_path)
    f = write(
        tmp_path / "data" / "t.csv",
        HEADER
        + "1,2024-01-05 10:30:00,A1,Theft,1,x\n2,yesterday,A1,Theft,1,x\n"
        + "3,,A1,Theft,1,x\n4,2024-13-45 10:00:00,A1,Theft,1,x\n",
    )
    result = load_source(warehouse_con, m, str(f))
    assert result.rows_inserted == 4 and result.rows_unparseable_timestamp == 3
    assert rows(warehouse_con, "occurred_at_raw", "occurred_at is null") == [
        ("yesterday",),
        (None,),
        ("2024-13-45 10:00:00",),
    ]


def test_utc_timestamps_converted_to_local_wall_clock(
    tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection
) -> None:
    data = copy.deepcopy(CITY)
    data["timezone"] = "America/Chicago"
    data["timestamp"] = {
        "column": "time",
        "formats": ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"],
        "zone": "UTC",
    }
    m = make_mapping(tmp_path, data)
    f = write(
        tmp_path / "data" / "utc.csv",
        "id,time,district\n"
        "w,2010-01-01 06:00:00,1\n"  # CST = UTC-6 → midnight
        "s,2010-07-01 05:00:00,1\n"  # CDT = UTC-5 → midnight
        "d,2010-03-14 08:30:00,1\n"  # DST starts 08:00 UTC → 03:30 CDT
        "z,2010-07-01T10:00:00+02:00,1\n",
    )  # explicit offset: 08:00 UTC → 03:00 CDT
    load_source(warehouse_con, m, str(f))
    assert rows(warehouse_con, "incident_id, occurred_at") == [
        ("w", datetime(2010, 1, 1, 0)),
        ("s", datetime(2010, 7, 1, 0)),
        ("d", datetime(2010, 3, 14, 3, 30)),
        ("z", datetime(2010, 7, 1, 3)),
    ]


def test_date_plus_hour_timestamp(tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection) -> None:
    data = copy.deepcopy(CITY)
    data["timestamp"] = {"date": "date", "date_formats": ["%m/%d/%Y"], "hour": "hour"}
    m = make_mapping(tmp_path, data)
    f = write(
        tmp_path / "data" / "dh.csv",
        "id,date,hour,district\n"
        "1,1/2/2010,0,1\n2,12/31/2010,23,1\n3,1/2/2010,24,1\n4,1/2/2010,,1\n",
    )
    result = load_source(warehouse_con, m, str(f))
    assert rows(warehouse_con, "incident_id, occurred_at, occurred_at_raw") == [
        ("1", datetime(2010, 1, 2, 0), "1/2/2010 0"),
        ("2", datetime(2010, 12, 31, 23), "12/31/2010 23"),
        ("3", None, "1/2/2010 24"),
        ("4", None, "1/2/2010"),
    ]
    assert result.rows_unparseable_timestamp == 2
    # a required hour column missing from a file is a file-level error
    g = write(tmp_path / "data2" / "nohour.csv", "id,date,district\n1,1/2/2010,1\n")
    with pytest.raises(LoadError, match="nohour.csv: required field 'timestamp hour'"):
        load_source(warehouse_con, m, str(g))


def test_reversal_counts_are_carried(
    tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection
) -> None:
    m = make_mapping(tmp_path)
    f = write(
        tmp_path / "data" / "c.csv",
        "id,occurred,district,n\n"
        "1,2024-01-05 10:30:00,A1,1\n2,2024-01-05 11:00:00,A1,2\n"
        "1,2024-01-05 10:30:00,A1,-1\n3,2024-01-05 12:00:00,A1,\n",
    )
    load_source(warehouse_con, m, str(f))
    assert [r[0] for r in rows(warehouse_con, "incident_count")] == [1, 2, -1, 1]
    assert warehouse_con.execute("select sum(incident_count) from raw.incidents").fetchone()[0] == 3


# --------------------------------------------------------------------------------------------
# mirror semantics and transactions


def test_same_file_twice_adds_nothing(
    tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection
) -> None:
    m = make_mapping(tmp_path)
    f = write(tmp_path / "data" / "a.csv", HEADER + "1,2024-01-05 10:30:00,A1,Theft,1,x\n")
    first = load_source(warehouse_con, m, str(f))
    before = snapshot(warehouse_con)
    second = load_source(warehouse_con, m, str(f))
    assert first.rows_inserted == 1
    assert second.rows_inserted == 0 and second.files_skipped == [str(f.resolve())]
    assert second.rows_total == 1
    after = snapshot(warehouse_con)
    assert after["incidents"] == before["incidents"]
    assert after["source_files"] == before["source_files"]
    # the same bytes under another name are the same file
    copy_ = write(tmp_path / "data" / "a_copy.csv", f.read_text())
    third = load_source(warehouse_con, m, str(tmp_path / "data"))
    assert third.rows_inserted == 0 and sorted(third.files_skipped) == sorted(
        [str(f.resolve()), str(copy_.resolve())]
    )


def test_mirror_removes_rows_of_files_no_longer_configured(
    tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection
) -> None:
    m = make_mapping(tmp_path)
    folder = tmp_path / "data"
    a = write(folder / "a.csv", HEADER + "1,2024-01-05 10:30:00,A1,Theft,1,x\n")
    b = write(
        folder / "b.csv",
        HEADER + "2,2024-01-06 10:30:00,A1,Theft,1,x\n3,2024-01-07 10:30:00,A1,Theft,1,x\n",
    )
    assert load_source(warehouse_con, m, str(folder)).rows_total == 3
    b.unlink()
    result = load_source(warehouse_con, m, str(folder))
    assert result.files_removed == [str(b.resolve())] and result.rows_deleted == 2
    assert result.files_skipped == [str(a.resolve())] and result.rows_total == 1
    assert rows(warehouse_con, "incident_id") == [("1",)]
    # a file changed in place is replaced, not added
    write(a, HEADER + "1,2024-01-05 10:30:00,A1,Robbery,1,x\n")
    result = load_source(warehouse_con, m, str(folder))
    assert result.rows_inserted == 1 and result.rows_deleted == 1
    assert rows(warehouse_con, "category_raw") == [("Robbery",)]
    assert warehouse_con.execute("select count(*) from raw.source_files").fetchone()[0] == 1


def test_other_sources_are_untouched(
    tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection
) -> None:
    m1 = make_mapping(tmp_path)
    other = copy.deepcopy(CITY)
    other["name"] = "town"
    m2 = make_mapping(tmp_path, other)
    f = write(tmp_path / "data" / "a.csv", HEADER + "1,2024-01-05 10:30:00,A1,Theft,1,x\n")
    g = write(tmp_path / "data2" / "b.csv", HEADER + "9,2024-01-05 10:30:00,Z9,Theft,1,x\n")
    load_source(warehouse_con, m1, str(f))
    load_source(warehouse_con, m2, str(g))
    assert warehouse_con.execute(
        "select source, count(*) from raw.incidents group by 1 order by 1"
    ).fetchall() == [("city", 1), ("town", 1)]


def test_failed_load_leaves_tables_identical(
    tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection
) -> None:
    m = make_mapping(tmp_path)
    folder = tmp_path / "data"
    write(folder / "a.csv", HEADER + "1,2024-01-05 10:30:00,A1,Theft,1,x\n")
    b = write(folder / "b.csv", HEADER + "2,2024-01-06 10:30:00,A1,Theft,1,x\n")
    load_source(warehouse_con, m, str(folder))
    before = snapshot(warehouse_con)
    assert len(before["incidents"]) == 2
    # b removed (would delete rows), c good (would insert), d truncated → whole load fails
    b.unlink()
    write(folder / "c.csv", HEADER + "3,2024-01-07 10:30:00,A1,Theft,1,x\n")
    write(folder / "d.csv", HEADER + "4,2024-01-08 10:30:00,A1,Theft,1,x\n5,2024\n")
    with pytest.raises(LoadError, match=r"d\.csv: line 3"):
        load_source(warehouse_con, m, str(folder))
    assert snapshot(warehouse_con) == before
    # same with a file-level error found before any SQL runs
    write(folder / "d.csv", "id;occurred;district\n4;2024-01-08 10:30:00;A1\n")
    with pytest.raises(LoadError, match="delimiter"):
        load_source(warehouse_con, m, str(folder))
    assert snapshot(warehouse_con) == before
    # the connection is still usable and a good load goes through
    (folder / "d.csv").unlink()
    assert load_source(warehouse_con, m, str(folder)).rows_total == 2


def test_changed_mapping_reloads_every_file(
    tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection
) -> None:
    m = make_mapping(tmp_path)
    f = write(tmp_path / "data" / "a.csv", HEADER + "TEST9,2024-01-05 10:30:00,A1,Theft,1,x\n")
    assert load_source(warehouse_con, m, str(f)).rows_flagged == {"test_record": 1}
    data = copy.deepcopy(CITY)
    data["filters"] = {"smoke": {"field": "category", "equals": "Theft"}}
    m2 = make_mapping(tmp_path, data)
    result = load_source(warehouse_con, m2, str(f))
    assert result.rows_inserted == 1 and result.rows_flagged == {"smoke": 1}
    assert warehouse_con.execute("select count(*) from raw.incidents").fetchone()[0] == 1


def test_relative_input_resolved_from_repo_root(
    tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = make_mapping(tmp_path)  # mapping at <tmp>/repo/sources/city.yml → repo root <tmp>/repo
    write(tmp_path / "repo" / "inbox" / "a.csv", HEADER + "1,2024-01-05 10:30:00,A1,T,1,x\n")
    monkeypatch.chdir(tmp_path)
    result = load_source(warehouse_con, m, "inbox/a.csv")
    assert result.files_loaded == [str((tmp_path / "repo" / "inbox" / "a.csv").resolve())]


# --------------------------------------------------------------------------------------------
# URLs


@pytest.fixture
def http_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """A local http.server on 127.0.0.1 serving a folder, in a thread."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    folder = tmp_path / "served"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_url_input(
    tmp_path: Path,
    tmp_warehouse: Path,
    warehouse_con: duckdb.DuckDBPyConnection,
    http_folder: tuple[str, Path],
) -> None:
    base, folder = http_folder
    m = make_mapping(tmp_path)
    write(
        folder / "incidents.csv",
        HEADER + "1,2024-01-05 10:30:00,A1,Théft,1,x\n2,2024-01-05 11:30:00,B2,Theft,1,x\n",
        "latin-1",
    )
    url = f"{base}/incidents.csv"
    result = load_source(warehouse_con, m, url)
    assert result.files_loaded == [url] and result.rows_inserted == 2
    assert rows(warehouse_con, "source_file, category_raw", "area = 'A1'") == [(url, "Théft")]
    cached = list((tmp_warehouse.parent / "downloads").glob("*-incidents.csv"))
    assert len(cached) == 1 and cached[0].read_bytes() == (folder / "incidents.csv").read_bytes()
    # loading again: served again (or 304), same bytes → skipped
    again = load_source(warehouse_con, m, url)
    assert again.files_skipped == [url] and again.rows_inserted == 0

    with pytest.raises(LoadError) as exc:
        load_source(warehouse_con, m, f"{base}/missing.csv")
    assert "missing.csv" in str(exc.value) and "HTTP 404" in str(exc.value)
    assert warehouse_con.execute("select count(*) from raw.incidents").fetchone()[0] == 2


# --------------------------------------------------------------------------------------------
# a city defined by YAML alone


ODD_CITY = """
name: oddville
title: Oddville Constabulary
country: FR
timezone: Europe/Paris
input: exports
files:
  delimiter: ";"
  encodings: [utf-8-sig, cp1252, latin-1]
  pattern: "*.txt"
fields:
  incident_id: [Ref, "Numéro"]
  area:
    column: [Secteur, "Sector Code"]
    regex: '^([A-Z]{2})-'
  category: [Type, "Catégorie"]
  offense_description: [Libellé]
  count: [Nb, Quantité]
timestamp:
  date: [Jour, Date]
  date_formats: ["%d/%m/%Y", "%Y-%m-%d"]
  hour: [Heure]
  zone: UTC
filters:
  exercise: {field: incident_id, matches: '^EX'}
  unknown_sector: {field: area, is_null: true}
  admin: {field: category, in: [Administratif, Perte]}
required: [incident_id, timestamp, area, count]
"""


def test_odd_city_from_yaml_alone(tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection) -> None:
    repo = tmp_path / "repo"
    (repo / "sources").mkdir(parents=True)
    (repo / "sources" / "oddville.yml").write_text(ODD_CITY, encoding="utf-8")
    m = load_mapping(repo / "sources" / "oddville.yml")
    exports = repo / "exports"
    # 2023 export: UTF-8 with BOM, padded fields, a reversal
    write(
        exports / "2023.txt",
        "Ref;Jour;Heure;Secteur;Type;Libellé;Nb;Commentaire\n"
        " A1 ; 01/07/2023 ; 22 ; PA-12 ; Vol ;  Vol à la tire  ; 1 ; rien \n"
        "A2;01/07/2023;23;PA-12;Vol;Vol simple;2;\n"
        "A1;01/07/2023;22;PA-12;Vol;Vol à la tire;-1;annulation\n"
        "EX1;02/07/2023;1;LY-01;Vol;exercice;1;\n",
        "utf-8-sig",
    )
    # 2024 export: cp1252, renamed and reordered headers, ISO dates, winter time
    write(
        exports / "2024.txt",
        "Quantité;Sector Code;Date;Heure;Catégorie;Numéro;Libellé\n"
        "1;LY-07;2024-01-15;12;Cambriolage;B1;Effraction – porte\n"
        "1;??;2024-01-15;13;Vol;B2;secteur inconnu\n"
        "1;LY-07;2024-01-15;14;Perte;B3;objet perdu\n",
        "cp1252",
    )
    # a file in the folder that does not match files.pattern is ignored
    write(exports / "readme.csv", "not;data\n")

    result = load_source(warehouse_con, m)  # the mapping's default input, relative to the repo
    assert result.source == "oddville" and len(result.files_loaded) == 2
    assert result.rows_inserted == 7
    assert result.rows_flagged == {"admin": 1, "exercise": 1, "unknown_sector": 1}
    assert warehouse_con.execute(
        "select encoding from raw.source_files order by source_file"
    ).fetchall() == [("utf-8-sig",), ("cp1252",)]
    got = rows(
        warehouse_con,
        "incident_id, occurred_at, area, category_raw, "
        "offense_description, incident_count, filter_reason",
    )
    assert got == [
        # UTC 22:00 in July = 00:00 next day in Paris (UTC+2)
        ("A1", datetime(2023, 7, 2, 0), "PA", "Vol", "Vol à la tire", 1, None),
        ("A2", datetime(2023, 7, 2, 1), "PA", "Vol", "Vol simple", 2, None),
        ("A1", datetime(2023, 7, 2, 0), "PA", "Vol", "Vol à la tire", -1, None),
        ("EX1", datetime(2023, 7, 2, 3), "LY", "Vol", "exercice", 1, "exercise"),
        # January: UTC+1
        ("B1", datetime(2024, 1, 15, 13), "LY", "Cambriolage", "Effraction – porte", 1, None),
        ("B2", datetime(2024, 1, 15, 14), None, "Vol", "secteur inconnu", 1, "unknown_sector"),
        ("B3", datetime(2024, 1, 15, 15), "LY", "Perte", "objet perdu", 1, "admin"),
    ]
    net = warehouse_con.execute(
        "select sum(incident_count) from raw.incidents where incident_id = 'A1'"
    ).fetchone()[0]
    assert net == 0
    src = warehouse_con.execute("select country, timezone from raw.sources").fetchall()
    assert src == [("FR", "Europe/Paris")]


# --------------------------------------------------------------------------------------------
# preview


def test_preview_reports_and_writes_nothing(tmp_path: Path) -> None:
    m = make_mapping(tmp_path)
    folder = tmp_path / "data"
    write(
        folder / "a.csv",
        HEADER + "1,2024-01-05 10:30:00,A1,Theft,1,x\n"
        "TEST2,2024-01-06 10:30:00,A1,Theft,1,x\n3,never,,,7,y\n",
    )
    before = sorted(p for p in tmp_path.rglob("*"))
    report = preview_source(m.path, str(folder))
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert "rows read: 3" in report
    assert "test_record (mapping filter): 1" in report
    assert "unparseable_timestamp: 1" in report and "'never'" in report
    assert "missing_area: 0" in report  # the row without area has no timestamp either
    assert "rows kept: 1" in report
    # after the filters: the test record is not in the range, areas or categories
    assert "date range of the rows kept: 2024-01-05 10:30:00 → 2024-01-05 10:30:00" in report
    assert "areas of the rows kept (1): A1 1" in report and "(1): Theft 1" in report


# --------------------------------------------------------------------------------------------
# real extracts (../shared/data), read in place


def _data_rows(path: Path, encoding: str = "utf-8") -> int:
    with path.open(encoding=encoding, newline="") as fh:
        return sum(1 for _ in csv.reader(fh)) - 1


def test_real_boston_extracts(shared_data: Path, warehouse_con: duckdb.DuckDBPyConnection) -> None:
    m = load_mapping(REPO_ROOT / "sources" / "boston.yml")
    result = load_source(warehouse_con, m, str(shared_data / "boston" / "crime_*.csv"))
    assert len(result.files_loaded) == 3 and result.rows_unparseable_timestamp == 0
    per_file = dict(
        warehouse_con.execute(
            "select regexp_extract(source_file, '[^/]+$'), count(*) from raw.incidents group by 1"
        ).fetchall()
    )
    for name, n in per_file.items():
        assert n == _data_rows(shared_data / "boston" / name), name
    assert per_file == {
        "crime_2016_2018_larceny.csv": 20929,
        "crime_2021_B2_B3_D14.csv": 21697,
        "crime_2023_q1.csv": 14527,
    }
    stats = dict(
        (r[0], r[1:])
        for r in warehouse_con.execute(
            """select regexp_extract(source_file, '[^/]+$'),
                      count(*) filter (where filter_reason = 'test_record'),
                      count(distinct category_raw), count(offense_code), count(area),
                      min(occurred_at)::date::varchar, max(occurred_at)::date::varchar
               from raw.incidents group by 1"""
        ).fetchall()
    )
    legacy = stats["crime_2016_2018_larceny.csv"]
    assert legacy[:3] == (0, 1, 20929) and legacy[4:] == ("2016-01-01", "2018-09-03")
    assert 20800 < legacy[3] < 20929  # a few published rows have no DISTRICT
    plt = stats["crime_2021_B2_B3_D14.csv"]
    assert plt[0] == 3 and plt[1] == 0 and plt[2] == 0  # PLTEST flagged; no group, no code
    assert stats["crime_2023_q1.csv"][:3] == (0, 0, 14527)  # current schema: code, no group
    assert stats["crime_2023_q1.csv"][4:] == ("2023-01-01", "2023-03-17")
    first = rows(
        warehouse_con,
        "incident_id, filter_reason, offense_description",
        "source_file like '%2021%' and source_row <= 3",
    )
    assert [r[0][:6] for r in first] == ["PLTEST"] * 3
    assert {r[1] for r in first} == {"test_record"}
    # "+00" is local wall-clock time: HOUR agrees with the stored hour on every row
    mismatched = warehouse_con.execute(
        f"""select count(*) from raw.incidents i join read_csv(
                '{shared_data / "boston" / "crime_2023_q1.csv"}', all_varchar=true) c
              on c.INCIDENT_NUMBER = i.incident_id
              and c.OCCURRED_ON_DATE = i.occurred_at_raw
            where hour(i.occurred_at) <> c.HOUR::int"""
    ).fetchone()[0]
    assert mismatched == 0
    assert result.rows_flagged == {"test_record": 3}


def test_real_houston_extract(
    shared_data: Path, tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection
) -> None:
    path = shared_data / "houston" / "crime_2010_jan_aug.csv"
    m = load_mapping(REPO_ROOT / "sources" / "houston.yml")
    result = load_source(warehouse_con, m, str(path))
    assert result.rows_inserted == _data_rows(path) == 86314
    assert result.rows_unparseable_timestamp == 0
    assert str(result.min_occurred_at) == "2010-01-01 00:00:00"
    assert str(result.max_occurred_at) == "2010-08-31 23:00:00"
    areas = dict(
        warehouse_con.execute("select area, count(*) from raw.incidents group by 1").fetchall()
    )
    assert all(a is None or a.isdigit() for a in areas) and 20 <= len(areas) <= 25
    assert areas[None] == 157  # beat UNK → no district
    cats = {
        r[0]
        for r in warehouse_con.execute("select distinct category_raw from raw.incidents").fetchall()
    }
    assert cats == {
        "theft",
        "burglary",
        "auto theft",
        "aggravated assault",
        "robbery",
        "rape",
        "murder",
    }
    total = warehouse_con.execute("select sum(incident_count) from raw.incidents").fetchone()[0]
    assert total == 87316

    # building from the UTC `time` column instead gives the same local times
    # (except around the autumn DST change, where local hours are ambiguous)
    data = yaml.safe_load((REPO_ROOT / "sources" / "houston.yml").read_text())
    data["timestamp"] = {"column": "time", "formats": ["%Y-%m-%d %H:%M:%S"], "zone": "UTC"}
    data["name"] = "houston_utc"
    data.pop("category_map")
    m_utc = make_mapping(tmp_path, data)
    load_source(warehouse_con, m_utc, str(path))
    agree = warehouse_con.execute(
        """select count(*) filter (where a.occurred_at = b.occurred_at), count(*)
           from raw.incidents a join raw.incidents b using (source_row)
           where a.source = 'houston' and b.source = 'houston_utc'"""
    ).fetchone()
    assert agree[1] == 86314 and agree[0] >= 86300


def test_unchanged_files_are_not_hashed_again(
    tmp_path: Path, warehouse_con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file's sha256 is reused while its size and mtime are unchanged (raw.file_hashes); a
    new size or mtime, or a file modified in the last seconds, is hashed (and compared)."""
    import os

    from ingest import loader

    hashed: list[str] = []
    real_sha256 = loader._sha256

    def counting_sha256(item: Any) -> str:
        hashed.append(Path(item.path).name)
        return real_sha256(item)

    monkeypatch.setattr(loader, "_sha256", counting_sha256)
    m = make_mapping(tmp_path)
    folder = tmp_path / "data"
    old = write(folder / "old.csv", HEADER + "1,2024-01-05 10:30:00,A1,Theft,1,x\n")
    os.utime(old, ns=(1_700_000_000_000_000_000, 1_700_000_000_000_000_000))
    fresh = write(folder / "fresh.csv", HEADER + "2,2024-01-06 10:30:00,A1,Theft,1,x\n")
    assert load_source(warehouse_con, m, str(folder)).rows_inserted == 2
    assert sorted(hashed) == ["fresh.csv", "old.csv"]
    cached = warehouse_con.execute("select file from raw.file_hashes").fetchall()
    assert cached == [(str(old.resolve()),)]  # the fresh file is not cached yet

    hashed.clear()
    result = load_source(warehouse_con, m, str(folder))
    assert hashed == ["fresh.csv"] and result.rows_inserted == 0
    assert sorted(result.files_skipped) == sorted([str(old.resolve()), str(fresh.resolve())])

    # same size, other content, other mtime: hashed again and replaced
    write(old, HEADER + "1,2024-01-05 10:30:00,A1,Fraud,1,x\n")  # Theft → Fraud
    os.utime(old, ns=(1_700_000_100_000_000_000, 1_700_000_100_000_000_000))
    hashed.clear()
    result = load_source(warehouse_con, m, str(folder))
    assert "old.csv" in hashed and result.rows_inserted == 1 and result.rows_deleted == 1
    assert rows(warehouse_con, "category_raw", "incident_id = '1'") == [("Fraud",)]
