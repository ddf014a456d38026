"""Mapping (sources/*.yml) validation: every kind of error names the key and the problem."""

from __future__ import annotations

import copy
import csv
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingest.mapping import (
    MappingError,
    SourceMapping,
    discover_mappings,
    load_mapping,
    normalize_header,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCES = REPO_ROOT / "sources"

BASE: dict[str, Any] = {
    "name": "city",
    "title": "Test city",
    "country": "US",
    "timezone": "America/New_York",
    "input": "data",
    "files": {"delimiter": ",", "encodings": ["utf-8-sig", "latin-1"]},
    "fields": {
        "incident_id": ["id"],
        "area": {"column": ["beat"], "regex": r"^(\d+)"},
        "category": "category",
        "offense_code": ["code"],
    },
    "timestamp": {"column": "occurred", "formats": ["%Y-%m-%d %H:%M:%S"]},
    "filters": {"test_record": {"field": "incident_id", "matches": "^TEST"}},
    "required": ["incident_id", "timestamp", "area"],
}


def write(tmp_path: Path, data: dict[str, Any], stem: str = "city") -> Path:
    folder = tmp_path / "sources"
    folder.mkdir(exist_ok=True)
    path = folder / f"{stem}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def variant(**changes: Any) -> dict[str, Any]:
    """BASE with dotted-path changes; a value of None deletes the key."""
    data = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        keys = dotted.split("__")
        d = data
        for k in keys[:-1]:
            d = d[k]
        if value is None:
            d.pop(keys[-1], None)
        else:
            d[keys[-1]] = value
    return data


def error_of(tmp_path: Path, data: dict[str, Any], stem: str = "city") -> str:
    with pytest.raises(MappingError) as exc:
        load_mapping(write(tmp_path, data, stem))
    return str(exc.value)


def test_valid_mapping_round_trip(tmp_path: Path) -> None:
    m = load_mapping(write(tmp_path, BASE))
    assert isinstance(m, SourceMapping)
    assert m.name == "city" and m.timezone == "America/New_York"
    assert m.fields["area"].columns == ("beat",) and m.fields["area"].regex == r"^(\d+)"
    assert m.fields["category"].columns == ("category",)  # short form: one string
    assert m.timestamp.formats == ("%Y-%m-%d %H:%M:%S",) and m.timestamp.zone == "local"
    assert [(f.name, f.field, f.op) for f in m.filters] == [
        ("test_record", "incident_id", "matches")
    ]
    assert m.input == ("data",) and len(m.sha256) == 64


@pytest.mark.parametrize("stem", ["boston", "houston"])
def test_repository_mappings_are_valid(stem: str) -> None:
    m = load_mapping(SOURCES / f"{stem}.yml")
    assert m.name == stem
    assert m.sample == stem and m.input == ("sample",)
    assert "timestamp" in m.required and "area" in m.required


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"colour": "red"}, "colour: unknown key 'colour'"),
        ({"files__sep": ";"}, "files.sep: unknown key 'sep'"),
        ({"fields__area": {"column": "beat", "regexp": "x"}}, "fields.area.regexp: unknown key"),
        ({"timestamp__format": "%Y"}, "timestamp.format: unknown key"),
        ({"fields__district": ["d"]}, "unknown canonical field 'district'"),
        ({"fields__occurred_at": ["d"]}, "timestamps go in the 'timestamp' section"),
        (
            {"filters__x": {"field": "weapon", "equals": "gun"}},
            "filters.x.field: unknown field 'weapon'",
        ),
        (
            {"filters__x": {"field": "offense_description", "equals": "a"}},
            "field 'offense_description' is not mapped",
        ),
        ({"filters__x": {"field": "area", "equals": "1", "in": ["2"]}}, "needs exactly one of"),
        (
            {"filters__x": {"field": "area", "matches": "(unclosed"}},
            "filters.x.matches: invalid regular expression '(unclosed'",
        ),
        (
            {"timestamp__formats": ["%Y-%m-%d %Q"]},
            "timestamp.formats[0]: invalid strptime format '%Y-%m-%d %Q' (unknown directive %Q)",
        ),
        ({"timestamp__formats": ["2020-01-01"]}, "has no % directive"),
        (
            {"fields__area": {"column": "beat", "regex": "^(\\d+"}},
            "fields.area.regex: invalid regular expression",
        ),
        ({"fields__area": {"column": "beat", "regex": "^\\d+"}}, "needs a capture group"),
        ({"fields__count": {"column": "n", "regex": "(\\d)"}}, "not allowed on the count field"),
        ({"timezone": "America/Boston"}, "timezone: unknown time zone 'America/Boston'"),
        ({"timestamp__zone": "Mars/Olympus"}, "timestamp.zone: unknown time zone"),
        (
            {"files__encodings": ["utf-8", "klingon-8"]},
            "files.encodings[1]: unknown encoding 'klingon-8'",
        ),
        ({"files__delimiter": ";;"}, "files.delimiter: must be one character"),
        ({"country": "USA"}, "country: 'USA' must be an ISO 3166 alpha-2 code"),
        ({"title": None}, "title: missing required key"),
        ({"required": ["incident_id", "weapon"]}, "required[1]: unknown field 'weapon'"),
        ({"required": ["offense_description"]}, "field 'offense_description' is not mapped"),
        ({"input": "sample"}, "input is 'sample' but the mapping has no 'sample' key"),
        ({"sample": "atlantis"}, "unknown sample generator 'atlantis'"),
        ({"category_map": ["weapon"]}, "category_map[0]: 'weapon' must be one of"),
        ({"timestamp": {"column": "a", "date": "b", "formats": ["%Y"]}}, "not both"),
        ({"timestamp": {"formats": ["%Y"]}}, "missing 'column'"),
        ({"timestamp": {"column": "t"}}, "timestamp.formats: missing"),
        (
            {"timestamp": {"date": "d", "date_formats": ["%Y-%m-%d %z"]}},
            "a UTC offset (%z / %Z) is not allowed in a date format",
        ),
        ({"fields__area": {"regex": "(x)"}}, "fields.area.column: missing"),
        (
            {"fields__latitude": ["lat"]},
            "fields.latitude: latitude is mapped without longitude: map both coordinates",
        ),
        ({"fields__longitude": ["lon"]}, "longitude is mapped without latitude"),
        (
            {"fields__area": {"column": "beat", "range": [1, 2]}},
            "fields.area.range: only latitude and longitude take a range",
        ),
        (
            {"fields__latitude": {"column": "y", "range": [42]}, "fields__longitude": ["x"]},
            "fields.latitude.range: must be [min, max] in decimal degrees",
        ),
        (
            {"fields__latitude": ["y"], "fields__longitude": {"column": "x", "range": [10, -10]}},
            "fields.longitude.range: [10, -10]: need min < max within [-180, 180]",
        ),
        (
            {"fields__latitude": {"column": "y", "range": [0, 95]}, "fields__longitude": ["x"]},
            "need min < max within [-90, 90]",
        ),
        (
            {
                "fields__latitude": ["y"],
                "fields__longitude": ["x"],
                "dedupe": {"keys": ["latitude"]},
            },
            "dedupe.keys[0]: unknown field 'latitude'",
        ),
    ],
)
def test_validation_errors(tmp_path: Path, changes: dict[str, Any], expected: str) -> None:
    message = error_of(tmp_path, variant(**changes))
    assert expected in message
    assert str(tmp_path / "sources" / "city.yml") in message  # names the file


def test_coordinate_fields_and_their_ranges(tmp_path: Path) -> None:
    """Optional: without them the ranges are the globe; with them, the mapping's (or the
    globe); a filter may test them."""
    assert load_mapping(write(tmp_path, BASE)).coordinate_range("latitude") == (-90.0, 90.0)
    data = variant(
        fields__latitude={"column": ["Lat", "Y"], "range": [42, 42.6]},
        fields__longitude=["Long"],
        filters__no_location={"field": "latitude", "is_null": True},
    )
    m = load_mapping(write(tmp_path, data))
    assert m.fields["latitude"].columns == ("Lat", "Y")
    assert m.coordinate_range("latitude") == (42.0, 42.6)
    assert m.coordinate_range("longitude") == (-180.0, 180.0)
    assert m.filters[-1].field == "latitude"


def test_name_must_match_file_stem(tmp_path: Path) -> None:
    assert "must equal the file name stem 'other'" in error_of(tmp_path, BASE, stem="other")


def test_invalid_yaml_and_empty_file(tmp_path: Path) -> None:
    folder = tmp_path / "sources"
    folder.mkdir()
    (folder / "city.yml").write_text("name: [unclosed\n")
    with pytest.raises(MappingError, match="invalid YAML"):
        load_mapping(folder / "city.yml")
    (folder / "city.yml").write_text("")
    with pytest.raises(MappingError, match="mapping is empty"):
        load_mapping(folder / "city.yml")


def test_category_map_checked_against_seed_only_when_it_exists(tmp_path: Path) -> None:
    data = variant(category_map=["offense_code"])
    path = write(tmp_path, data)
    assert load_mapping(path).category_map == ("offense_code",)  # no seeds folder: not checked

    seeds = tmp_path / "dbt_project" / "seeds"
    seeds.mkdir(parents=True)
    (seeds / "category_map.csv").write_text(
        "source,match_on,raw_value,category\nboston,offense_code,619,Larceny\n"
        "city,offense_description,THEFT,Theft\n"
    )
    with pytest.raises(MappingError) as exc:
        load_mapping(path)
    assert "has no rows with source='city' and match_on='offense_code'" in str(exc.value)

    with (seeds / "category_map.csv").open("a") as fh:
        fh.write("city,offense_code,23,Theft\n")
    assert load_mapping(path).category_map == ("offense_code",)
    # an explicit seeds folder overrides the default
    with pytest.raises(MappingError):
        load_mapping(path, seeds_dir=_seed_dir_without_city(tmp_path))


def _seed_dir_without_city(tmp_path: Path) -> Path:
    other = tmp_path / "other_seeds"
    other.mkdir()
    (other / "category_map.csv").write_text("source,match_on,raw_value,category\n")
    return other


def test_repository_category_map_seed_covers_repository_mappings() -> None:
    seed = REPO_ROOT / "dbt_project" / "seeds" / "category_map.csv"
    assert seed.is_file(), f"{seed} is missing"
    with seed.open(newline="", encoding="utf-8") as fh:
        seeded = {(r["source"], r["match_on"]) for r in csv.DictReader(fh)}
    for stem in ("boston", "houston"):
        mapping = load_mapping(SOURCES / f"{stem}.yml")  # validated against the seed
        assert mapping.category_map
        assert {(mapping.name, field) for field in mapping.category_map} <= seeded


def test_date_hour_timestamp_form(tmp_path: Path) -> None:
    data = variant(
        timestamp={
            "date": ["date", "Date"],
            "date_formats": ["%m/%d/%Y"],
            "hour": "hour",
            "zone": "UTC",
        }
    )
    m = load_mapping(write(tmp_path, data))
    assert m.timestamp.is_date_hour
    assert m.timestamp.date_columns == ("date", "Date") and m.timestamp.hour_columns == ("hour",)
    assert m.timestamp.zone == "UTC"
    assert m.aliases("timestamp") == ("date", "Date", "hour")


def test_filter_forms(tmp_path: Path) -> None:
    data = variant(
        filters={
            "a": {"field": "area", "in": ["1", 2]},
            "b": {"field": "category", "equals": "TEST"},
            "c": {"field": "offense_code", "is_null": True},
            "d": {"field": "timestamp", "matches": "^1900"},
        }
    )
    m = load_mapping(write(tmp_path, data))
    assert [(f.name, f.op, f.value) for f in m.filters] == [
        ("a", "in", ("1", "2")),
        ("b", "equals", "TEST"),
        ("c", "is_null", True),
        ("d", "matches", "^1900"),
    ]
    bad = variant(filters={"Bad Name": {"field": "area", "equals": "1"}})
    assert "must be lower case" in error_of(tmp_path, bad)


def test_date_range_and_negated_filter_forms(tmp_path: Path) -> None:
    """YAML reads an unquoted 2019-01-01 as a date: the same as the quoted text."""
    path = tmp_path / "sources" / "city.yml"
    path.parent.mkdir()
    text = yaml.safe_dump(variant(filters=None), sort_keys=False) + (
        "filters:\n"
        "  old: {field: timestamp, before: 2019-01-01}\n"
        "  window: {field: timestamp, since: '2019-01-01 06:30', before: 2020-01-01, not: true}\n"
        "  other: {field: area, matches: '^1', not: true}\n"
        "  has_code: {field: offense_code, is_null: true, not: true}\n"
    )
    path.write_text(text, encoding="utf-8")
    m = load_mapping(path)
    assert [(f.name, f.op, f.value, f.negate) for f in m.filters] == [
        ("old", "range", (None, "2019-01-01 00:00:00"), False),
        ("window", "range", ("2019-01-01 06:30:00", "2020-01-01 00:00:00"), True),
        ("other", "matches", "^1", True),
        ("has_code", "is_null", True, True),
    ]


def test_discover_mappings(tmp_path: Path) -> None:
    for stem in ("b", "a", "c"):
        (tmp_path / f"{stem}.yml").write_text("name: x\n")
    (tmp_path / "notes.md").write_text("not a mapping")
    assert [p.name for p in discover_mappings(tmp_path, None)] == ["a.yml", "b.yml", "c.yml"]
    assert [p.name for p in discover_mappings(tmp_path, ["c", " a"])] == ["c.yml", "a.yml"]
    with pytest.raises(MappingError) as exc:
        discover_mappings(tmp_path, ["a", "zz"])
    assert "unknown source 'zz'" in str(exc.value) and "available: a, b, c" in str(exc.value)
    assert {p.stem for p in discover_mappings(SOURCES, None)} >= {"boston", "houston"}


def test_normalize_header() -> None:
    assert normalize_header("  Offense Code ") == normalize_header("OFFENSE_CODE")
    assert normalize_header("\ufeffINCIDENT_NUMBER") == "incident_number"
    assert normalize_header("# of  offenses") == "#_of_offenses"
