"""Bad input, nothing lost (issue #8): a corpus of bad raw files for each real source mapping
(sources/boston.yml, sources/houston.yml). Every case is either REJECTED by the loader (a
LoadError naming the file, and the line / column where known; raw.* unchanged) or CLEANED by
dbt (the rows dropped, counted per reason in marts.incidents_data_quality). docs/reliability.md
lists what happens in each case. The files are small and generated here (tests/corpus/ keeps a
copy of each, written by `python tests/test_reliability_corpus.py`)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from conftest import run_dbt

from ingest.loader import LoadError, load_source
from ingest.mapping import SourceMapping, load_mapping
from samples.incidents import BOSTON_CURRENT_COLUMNS, HOUSTON_COLUMNS

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "corpus"

# ---------------------------------------------------------------------------------------------
# tiny valid files in each source's real schema


def houston_row(
    date: str = "3/14/2023", hour: str = "13", offense: str = "theft", beat: str = "10H50",
    number: str = "1",
) -> list[str]:  # fmt: skip
    return [
        "2023-03-14 18:00:00", date, hour, "20A", offense, beat, "1200-1299", "main", "st", "-",
        number, "march", "tuesday", "apartment", "1250 main st", "-95.37", "29.76",
    ]  # fmt: skip


def boston_row(
    incident: str = "I230001", code: str = "619", district: str = "B2",
    ts: str = "2023-03-14 13:05:00+00",
) -> list[str]:  # fmt: skip
    return [
        incident, code, "", "LARCENY ALL OTHERS", district, "282", "0", ts, "2023", "3",
        "Tuesday", "13", "", "WASHINGTON ST", "42.33", "-71.08", "(42.33, -71.08)",
    ]  # fmt: skip


def csv_text(header: tuple[str, ...] | list[str], rows: list[list[str]], delim: str = ",") -> str:
    def cell(v: str) -> str:
        return f'"{v}"' if (delim in v or '"' in v) else v

    return "".join(delim.join(cell(v) for v in r) + "\n" for r in [list(header), *rows])


def houston_ok(n: int = 3, start_hour: int = 8) -> list[list[str]]:
    return [houston_row(hour=str(start_hour + i), beat=f"{10 + i % 3}H10") for i in range(n)]


def boston_ok(n: int = 3, prefix: str = "I2300") -> list[list[str]]:
    return [
        boston_row(incident=f"{prefix}{i:02d}", ts=f"2023-03-14 {8 + i:02d}:00:00+00")
        for i in range(n)
    ]


# ---------------------------------------------------------------------------------------------
# REJECTED: (case, source, file bytes, expected message fragment, line, column)

HH, BH = HOUSTON_COLUMNS, BOSTON_CURRENT_COLUMNS


def _rejected() -> list[tuple[str, str, bytes, str, int | None, str | None]]:
    h_text = csv_text(HH, houston_ok())
    b_text = csv_text(BH, boston_ok())
    renamed = csv_text(["offense_type" if c == "offense" else c for c in HH], houston_ok())
    missing = csv_text(
        [c for c in BH if c != "DISTRICT"],
        [[v for c, v in zip(BH, r, strict=True) if c != "DISTRICT"] for r in boston_ok()],
    )
    truncated = h_text.rstrip("\n")
    truncated = truncated[: truncated.rfind(",", 0, len(truncated) - 30)]  # cut mid-row
    bad_count = csv_text(HH, [*houston_ok(2), houston_row(number="one")])
    return [
        ("wrong_delimiter", "houston", csv_text(HH, houston_ok(), ";").encode(),
         "looks like the delimiter is ';'", 1, "date"),
        ("wrong_delimiter", "boston", csv_text(BH, boston_ok(), "\t").encode(),
         "looks like the delimiter is '\\t'", 1, "INCIDENT_NUMBER"),
        ("renamed_required_column", "houston", renamed.encode(), "required field 'category'",
         1, "offense"),
        ("missing_required_column", "boston", missing.encode(), "required field 'area'", 1,
         "DISTRICT"),
        ("empty_file", "houston", b"", "file is empty", None, None),
        ("empty_file", "boston", b"", "file is empty", None, None),
        ("header_only", "houston", csv_text(HH, []).encode(), "header but no data rows", None,
         None),
        ("header_only", "boston", csv_text(BH, []).encode(), "header but no data rows", None,
         None),
        ("truncated_mid_row", "houston", truncated.encode(), "truncated row", 4, None),
        ("truncated_in_quotes", "boston", (b_text + 'I9,619,,"LARCENY ALL').encode(),
         "line 5", 5, None),
        ("undecodable_bytes", "houston", h_text.encode("utf-16-le"), "cannot decode", None,
         None),
        ("non_numeric_count", "houston", bad_count.encode(), "is not a whole number", 4,
         "number"),
    ]  # fmt: skip


REJECTED = _rejected()


def _snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {
        t: con.execute(f"select * from raw.{t} order by all").fetchall()
        for t in ("incidents", "source_files", "sources")
    }


@pytest.mark.parametrize(
    ("case", "source", "data", "fragment", "line", "column"),
    REJECTED,
    ids=[f"{r[1]}-{r[0]}" for r in REJECTED],
)
def test_rejected_case_names_file_line_column_and_changes_nothing(
    tmp_path: Path,
    case: str,
    source: str,
    data: bytes,
    fragment: str,
    line: int | None,
    column: str | None,
) -> None:
    mapping = load_mapping(REPO / "sources" / f"{source}.yml")
    good = tmp_path / "good"
    good.mkdir()
    header, rows = (HH, houston_ok()) if source == "houston" else (BH, boston_ok())
    (good / f"{source}_good.csv").write_text(csv_text(header, rows))
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    try:
        load_source(con, mapping, str(good))
        before = _snapshot(con)
        bad_name = f"{source}_{case}.csv"
        (good / bad_name).write_bytes(data)
        with pytest.raises(LoadError) as err:
            load_source(con, mapping, str(good))
        assert bad_name in str(err.value) and err.value.file.endswith(bad_name)
        assert fragment in str(err.value), str(err.value)
        if line is not None:
            assert err.value.line == line, str(err.value)
        if column is not None:
            assert err.value.column == column, str(err.value)
        assert _snapshot(con) == before  # nothing written, nothing removed
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# CLEANED: loaded, then dropped by dbt and counted per reason


def cleaned_corpus() -> dict[str, dict[str, bytes]]:
    """{source: {file name: bytes}}: every case that loads and is cleaned by dbt."""
    h_base = houston_ok(6)
    b_base = boston_ok(6)
    return {
        "houston": {
            # history so the marts have full days (two days, the second is the partial last day)
            "houston_a_base.csv": csv_text(
                HH, [*h_base, houston_row(date="3/15/2023", hour="1")]
            ).encode(),
            # UTF-8 with a byte-order mark
            "houston_b_bom.csv": b"\xef\xbb\xbf" + csv_text(HH, houston_ok(2, 20)).encode(),
            # latin-1 beside UTF-8 files (mixed encodings in one folder)
            "houston_c_latin1.csv": csv_text(HH, [houston_row(hour="5", offense="theft")])
            .replace("main st", "calle peñasco")
            .encode("latin-1"),
            # dates: unparseable, year 1900, far future, hour 25
            "houston_d_dates.csv": csv_text(
                HH,
                [
                    houston_row(date="14/3/2023"),
                    houston_row(date="not a date"),
                    houston_row(date="3/14/1900"),
                    houston_row(date="3/14/2099"),
                    houston_row(hour="25"),
                ],
            ).encode(),
            # the base file republished under another name: every row a duplicate
            "houston_e_republished.csv": csv_text(HH, h_base).encode(),
            # a record and its reversal (-1): both kept, they net to zero
            "houston_f_reversal.csv": csv_text(
                HH,
                [
                    houston_row(hour="3", beat="19H10"),
                    houston_row(hour="3", beat="19H10", number="-1"),
                ],
            ).encode(),
            # missing area (beat UNK → no digits) and missing category
            "houston_g_missing.csv": csv_text(
                HH, [houston_row(beat="UNK"), houston_row(offense="")]
            ).encode(),
        },
        "boston": {
            "boston_a_base.csv": csv_text(
                BH, [*b_base, boston_row("I239999", ts="2023-03-15 01:00:00+00")]
            ).encode(),
            # test records (PLTEST…): the mapping's test_record filter
            "boston_b_test_records.csv": csv_text(
                BH, [boston_row("PLTEST001"), boston_row("PLTEST002")]
            ).encode(),
            # exact duplicate rows inside one file and across files
            "boston_c_duplicates.csv": csv_text(BH, [b_base[0], b_base[0], b_base[1]]).encode(),
            # impossible dates
            "boston_d_dates.csv": csv_text(
                BH,
                [
                    boston_row("I1", ts="1900-01-01 00:00:00+00"),
                    boston_row("I2", ts="2099-12-31 23:00:00+00"),
                    boston_row("I3", ts="2023-02-30 10:00:00+00"),
                ],
            ).encode(),
            # UTF-8 BOM and latin-1 in the same folder
            "boston_e_bom.csv": b"\xef\xbb\xbf" + csv_text(BH, boston_ok(1, "I2400")).encode(),
            "boston_f_latin1.csv": csv_text(BH, boston_ok(1, "I2500"))
            .replace("WASHINGTON ST", "PLAZA MUÑOZ MARÍN")
            .encode("latin-1"),
            # no district
            "boston_g_missing_area.csv": csv_text(BH, [boston_row("I77", district="")]).encode(),
        },
    }


#: expected rows per (source, reason) in marts.incidents_data_quality
EXPECTED = {
    "houston": {
        "kept": 6 + 1 + 2 + 1 + 2,  # base (+ last day) + BOM + latin-1 + reversal pair
        "unparseable_timestamp": 3,  # 14/3/2023, "not a date", hour 25
        "implausible_date": 2,  # 1900, 2099
        "duplicate": 6,  # the republished file
        "missing_area": 1,
        "missing_category": 1,
    },
    "boston": {
        # base 6 + last day + one in-file copy kept? no: exact copies of base rows are duplicates
        "kept": 6 + 1 + 1 + 1,  # base + last day + BOM + latin-1
        "test_record": 2,
        "duplicate": 3,  # b_base[0] twice and b_base[1] again
        "implausible_date": 2,
        "unparseable_timestamp": 1,  # 30 February
        "missing_area": 1,
    },
}


def _dbt(warehouse: Path, target: Path, *args: str):
    """dbt in this process on the session's parsed manifest (tests/conftest.py)."""
    return run_dbt(
        warehouse, "build", "--select", "+daily_features", "+incidents_data_quality", *args,
        target=target,
    )  # fmt: skip


def _load_folder(con: duckdb.DuckDBPyConnection, mapping: SourceMapping, folder: Path) -> None:
    load_source(con, mapping, str(folder))


def test_cleaned_cases_are_counted_and_an_orphan_reversal_is_dropped(
    tmp_path: Path,
) -> None:
    warehouse = tmp_path / "w" / "crimecast.duckdb"
    warehouse.parent.mkdir()
    folders = {}
    for source, files in cleaned_corpus().items():
        folders[source] = tmp_path / source
        folders[source].mkdir()
        for name, data in files.items():
            (folders[source] / name).write_bytes(data)
    con = duckdb.connect(str(warehouse))
    try:
        for source, folder in folders.items():
            _load_folder(con, load_mapping(REPO / "sources" / f"{source}.yml"), folder)
        encodings = dict(
            con.execute(
                "select regexp_extract(source_file, '[^/]+$'), encoding from raw.source_files"
            ).fetchall()
        )
    finally:
        con.close()
    assert encodings["houston_b_bom.csv"] == "utf-8-sig"
    assert encodings["houston_c_latin1.csv"] == "latin-1"
    assert encodings["boston_f_latin1.csv"] == "latin-1"

    build = _dbt(warehouse, tmp_path / "target")
    assert build.returncode == 0, build.stdout[-3000:]
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        got: dict[str, dict[str, int]] = {}
        for source, reason, rows, read, kept, dropped in con.execute(
            "select source, reason, rows, rows_read, rows_kept, rows_dropped "
            "from marts.incidents_data_quality"
        ).fetchall():
            if rows:
                got.setdefault(source, {})[reason] = rows
            assert read == kept + dropped
        net = con.execute(
            "select sum(incident_count) from marts.daily_counts where source = 'houston' "
            "and area = '19'"
        ).fetchone()[0]
    finally:
        con.close()
    assert got == EXPECTED
    assert net == 0  # the reversal nets its record

    # an orphan reversal (-1 with no record to reverse) would make its day negative. Houston's
    # policy (orphan_reversals: drop, the default) drops it with a counted reason: the build
    # passes, the row is listed with its file and row, and no day goes negative.
    orphan = folders["houston"] / "houston_h_orphan_reversal.csv"
    orphan.write_text(csv_text(HH, [houston_row(hour="4", beat="15H10", number="-1")]))
    con = duckdb.connect(str(warehouse))
    try:
        _load_folder(con, load_mapping(REPO / "sources" / "houston.yml"), folders["houston"])
    finally:
        con.close()
    build = _dbt(warehouse, tmp_path / "target")
    assert build.returncode == 0, build.stdout[-3000:]
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        orphans = con.execute(
            "select source_file, source_row, orphan_reversals "
            "from intermediate.int_incidents__orphan_reversals"
        ).fetchall()
        dropped = con.execute(
            "select rows, net_incident_count, rows_read, rows_kept + rows_dropped "
            "from marts.incidents_data_quality "
            "where source = 'houston' and reason = 'orphan_reversal'"
        ).fetchone()
        area_15 = con.execute(
            "select count(*), sum(incident_count), sum(n_records) from marts.daily_counts "
            "where source = 'houston' and area = '15'"
        ).fetchone()
    finally:
        con.close()
    assert [(Path(f).name, row, policy) for f, row, policy in orphans] == [
        ("houston_h_orphan_reversal.csv", 1, "drop")
    ]
    assert (
        dropped[:2] == (1, -1) and dropped[2] == dropped[3] == sum(EXPECTED["houston"].values()) + 1
    )
    assert area_15 == (0, None, None)  # dropped: its area has no kept record, hence no series


def write_corpus(folder: Path = CORPUS) -> None:
    """Write every corpus file under tests/corpus/<rejected|cleaned>/<source>/ (for reading)."""
    for case, source, data, *_ in REJECTED:
        path = folder / "rejected" / source / f"{case}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    for source, files in cleaned_corpus().items():
        for name, data in files.items():
            path = folder / "cleaned" / source / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


if __name__ == "__main__":
    write_corpus()
