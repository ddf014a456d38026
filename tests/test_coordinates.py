"""Optional coordinates end to end: a mapping's latitude / longitude loaded as published, set
NULL by dbt when implausible (out of the mapping's range, 0 / 0, not a number, one of two) and
counted in incidents_data_quality, and the areas' median positions in area_locations; a mapping
without coordinates still loads and builds. Plus the real Boston and Houston extracts: the
share of rows with plausible coordinates, checked against the published files read directly."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from conftest import run_dbt

from ingest.loader import load_source, mark_built, rebuild_window
from ingest.mapping import load_mapping

REPO_ROOT = Path(__file__).resolve().parents[1]

CITY: dict[str, Any] = {
    "name": "geo",
    "title": "A city with coordinates",
    "country": "US",
    "timezone": "America/New_York",
    "input": "data",
    "fields": {
        "incident_id": ["id"],
        "area": ["district"],
        "category": ["category"],
        "latitude": {"column": ["lat", "Y"], "range": [42.0, 42.6]},
        "longitude": {"column": ["lon", "X"], "range": [-71.4, -70.6]},
    },
    "timestamp": {"column": ["occurred"], "formats": ["%Y-%m-%d %H:%M:%S"]},
    "required": ["incident_id", "timestamp", "area"],
    "last_day": "complete",
}
HEADER = "id,occurred,district,category,lat,lon\n"
#: (id, district, lat, lon, what dbt makes of it)
ROWS = [
    ("1", "A1", "42.30", "-71.10", "located"),
    ("2", "A1", " 42.32 ", "-71.08", "located"),  # trimmed
    ("3", "A1", "42.31", "-71.09", "located"),
    ("4", "A1", "42.59", "-70.61", "located"),  # far, inside the range: the median holds
    ("5", "A1", "-1", "-1", "implausible"),  # Boston's legacy "no location"
    ("6", "A1", "0", "0", "implausible"),
    ("7", "B2", "43.5", "-71.0", "implausible"),  # out of the latitude range
    ("8", "B2", "n/a", "-71.0", "implausible"),  # not a number
    ("9", "B2", "42.3", "", "implausible"),  # one of two
    ("10", "B2", "", "", "missing"),
]


def _csv(rows: list[tuple[str, ...]]) -> str:
    lines = [f"{i},2024-01-0{1 + n % 3} 10:00:00,{d},Theft,{la},{lo}" for n, (i, d, la, lo, _) in
             enumerate(rows)]  # fmt: skip
    return HEADER + "\n".join(lines) + "\n"


def _mapping(root: Path, data: dict[str, Any]) -> Path:
    path = root / "sources" / f"{data['name']}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _build(warehouse: Path, target: Path) -> None:
    con = duckdb.connect(str(warehouse))
    try:
        window = rebuild_window(con)
    finally:
        con.close()
    done = run_dbt(
        warehouse, "build", "--select", "+area_locations", "+incidents_data_quality",
        "--exclude-resource-type", "unit_test", *window.dbt_args(),
        target=target, env={"CRIMECAST_SERIES_PRESET": "", "CRIMECAST_MIN_YEAR": ""},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    con = duckdb.connect(str(warehouse))
    try:
        mark_built(con, window)
    finally:
        con.close()


@dataclass
class Built:
    warehouse: Path

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """`geo` (coordinates, one file with them and one without the columns) and `plain` (a
    mapping without coordinates) loaded and built."""
    root = tmp_path_factory.mktemp("coordinates")
    warehouse = root / "w" / "crimecast.duckdb"
    warehouse.parent.mkdir()
    (root / "data" / "geo").mkdir(parents=True)
    (root / "data" / "geo" / "a.csv").write_text(_csv(ROWS))
    # a later release without the coordinate columns: optional, so NULL ("missing")
    (root / "data" / "geo" / "b.csv").write_text(
        "id,occurred,district,category\n11,2024-01-02 11:00:00,B2,Theft\n"
    )
    (root / "data" / "plain").mkdir(parents=True)
    (root / "data" / "plain" / "a.csv").write_text(_csv(ROWS[:3]))
    plain = copy.deepcopy(CITY)
    plain["name"] = "plain"
    for name in ("latitude", "longitude"):
        del plain["fields"][name]
    con = duckdb.connect(str(warehouse))
    try:
        for data in (CITY, plain):
            mapping = load_mapping(_mapping(root, data))
            load_source(con, mapping, str(root / "data" / data["name"]))
    finally:
        con.close()
    _build(warehouse, root / "target")
    yield Built(warehouse)


def test_the_loader_keeps_the_published_text_and_the_ranges(built: Built) -> None:
    raw = {
        (src, i): (la, lo)
        for src, i, la, lo in built.query(
            "select source, incident_id, latitude, longitude from raw.incidents"
        )
    }
    assert raw[("geo", "2")] == ("42.32", "-71.08")  # trimmed, still text
    assert raw[("geo", "8")] == ("n/a", "-71.0")
    assert raw[("geo", "10")] == (None, None)
    assert raw[("geo", "11")] == (None, None)  # the file without the columns
    assert raw[("plain", "1")] == (None, None)  # the mapping without coordinates
    ranges = dict(
        (r[0], r[1:])
        for r in built.query(
            "select source, latitude_min, latitude_max, longitude_min, longitude_max "
            "from raw.sources"
        )
    )
    assert ranges == {"geo": (42.0, 42.6, -71.4, -70.6), "plain": (-90.0, 90.0, -180.0, 180.0)}


def test_implausible_coordinates_are_set_null_and_counted(built: Built) -> None:
    status = dict(
        built.query(
            "select incident_id, coordinates_status from intermediate.int_incidents__checked "
            "where source = 'geo'"
        )
    )
    expected = {i: what for i, _d, _la, _lo, what in ROWS} | {"11": "missing"}
    assert status == expected
    nulls = built.query(
        "select count(*) from intermediate.int_incidents__checked where source = 'geo' "
        "and coordinates_status <> 'located' and (latitude is not null or longitude is not null)"
    )
    assert nulls == [(0,)]
    # nothing is dropped for its coordinates
    assert built.query(
        "select count(*) from intermediate.int_incidents__kept where source = 'geo'"
    ) == [(len(ROWS) + 1,)]
    counts = built.query(
        "select distinct rows_read, rows_located, rows_coordinates_implausible "
        "from marts.incidents_data_quality where source = 'geo'"
    )
    located = sum(1 for r in ROWS if r[-1] == "located")
    implausible = sum(1 for r in ROWS if r[-1] == "implausible")
    assert counts == [(len(ROWS) + 1, located, implausible)]
    assert built.query(
        "select distinct rows_located, rows_coordinates_implausible "
        "from marts.incidents_data_quality where source = 'plain'"
    ) == [(0, 0)]


def test_area_locations_are_the_medians_of_the_located_records(built: Built) -> None:
    areas = {
        (r[0], r[1]): r[2:]
        for r in built.query(
            "select source, area, latitude, longitude, n_records, n_located, share_located "
            "from marts.area_locations"
        )
    }
    # A1: 42.30, 42.31, 42.32, 42.59 → (42.31 + 42.32) / 2; -1/-1 and 0/0 left out
    assert areas[("geo", "A1")] == (42.315, -71.085, 6, 4, round(4 / 6, 6))
    assert areas[("geo", "B2")] == (None, None, 5, 0, 0.0)
    assert areas[("plain", "A1")] == (None, None, 3, 0, 0.0)


# ---------------------------------------------------------------------------------------------
# the real extracts (../shared/data)


def _published_located(path: Path, lat: str, lon: str, bounds: tuple[float, ...]) -> int:
    """Rows of a published file whose coordinates are numbers inside `bounds` and not 0 / 0,
    counted by DuckDB straight from the CSV (not through the loader)."""
    la_min, la_max, lo_min, lo_max = bounds
    return duckdb.sql(
        f"""select count(*) from read_csv('{path}', all_varchar=true, header=true)
            where try_cast(trim("{lat}") as double) between {la_min} and {la_max}
              and try_cast(trim("{lon}") as double) between {lo_min} and {lo_max}
              and not (try_cast(trim("{lat}") as double) = 0
                       and try_cast(trim("{lon}") as double) = 0)"""
    ).fetchone()[0]


def test_real_extracts_share_of_rows_with_coordinates(shared_data: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "w" / "crimecast.duckdb"
    warehouse.parent.mkdir()
    inputs = {
        "boston": (sorted((shared_data / "boston").glob("crime_*.csv")), "Lat", "Long"),
        "houston": ([shared_data / "houston" / "crime_2010_jan_aug.csv"], "lat", "lon"),
    }
    con = duckdb.connect(str(warehouse))
    try:
        for name in inputs:
            mapping = load_mapping(REPO_ROOT / "sources" / f"{name}.yml")
            spec = str(shared_data / name / "crime_*.csv")
            load_source(con, mapping, spec)
    finally:
        con.close()
    _build(warehouse, tmp_path / "target")
    got = Built(warehouse).query(
        "select distinct source, rows_read, rows_located, rows_coordinates_implausible "
        "from marts.incidents_data_quality order by source"
    )
    for source, read, located, implausible in got:
        files, lat, lon = inputs[source]
        mapping = load_mapping(REPO_ROOT / "sources" / f"{source}.yml")
        bounds = (*mapping.coordinate_range("latitude"), *mapping.coordinate_range("longitude"))
        assert located == sum(_published_located(f, lat, lon, bounds) for f in files), source
        assert located + implausible <= read
        # the measured share is printed for the record (docs: `pytest -s`)
        print(f"{source}: {located:,} of {read:,} rows located ({located / read:.2%}), "
              f"{implausible:,} implausible set aside")  # fmt: skip
        assert located / read > 0.8, f"{source}: only {located / read:.1%} located"
