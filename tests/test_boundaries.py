"""Area boundaries (the mapping's `boundaries` key): validated at load with one-line errors
naming the mapping file and the key, normalised like the warehouse's `area`, copied for the
dashboards (serving/boundaries.py); the Boston sample's file is what its generator writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_mapping import BASE, error_of, variant, write

from ingest.mapping import (
    BOUNDARY_AREA_PROPERTY,
    load_mapping,
    normalise_area,
    normalised_boundaries,
)
from samples.boundaries import BOSTON_BOUNDARIES, boston_boundaries, render, voronoi_cells
from samples.incidents import BOSTON_DISTRICTS
from serving.boundaries import INDEX, publish_boundaries

REPO_ROOT = Path(__file__).resolve().parents[1]
SQUARE = [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]]


def feature(beat: Any, geometry: str = "Polygon", **props: Any) -> dict[str, Any]:
    coords = SQUARE if geometry != "MultiPolygon" else [SQUARE]
    if geometry == "Point":
        coords = [0.5, 0.5]
    return {
        "type": "Feature",
        "properties": {"BEAT": beat, **props},
        "geometry": {"type": geometry, "coordinates": coords},
    }


def geojson(tmp_path: Path, features: list[dict], name: str = "areas.geojson") -> Path:
    path = tmp_path / "sources" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def with_boundaries(**spec: Any) -> dict[str, Any]:
    return variant(boundaries={"file": "areas.geojson", "area_property": "BEAT", **spec})


def one_line(message: str, *parts: str) -> None:
    assert "\n" not in message, message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


def test_good_file_relative_to_the_mapping_and_codes_normalised_like_area(tmp_path: Path):
    # BASE's area is the leading digits of the beat, then trimmed: " 10H50 " -> "10"
    geojson(tmp_path, [feature(" 10H50 "), feature(2, "MultiPolygon", NAME="two")])
    m = load_mapping(write(tmp_path, with_boundaries()))
    assert m.boundaries is not None
    assert m.boundaries.file == (tmp_path / "sources" / "areas.geojson").resolve()
    assert m.boundaries.areas == ("10", "2")
    out = normalised_boundaries(m)
    assert [f["properties"][BOUNDARY_AREA_PROPERTY] for f in out["features"]] == ["10", "2"]
    assert out["features"][1]["properties"]["NAME"] == "two"  # published properties kept
    assert out["features"][0]["properties"]["BEAT"] == " 10H50 "


def test_absolute_path_and_no_boundaries(tmp_path: Path):
    path = geojson(tmp_path, [feature("7")], "elsewhere.geojson")
    m = load_mapping(write(tmp_path, with_boundaries(file=str(path))))
    assert m.boundaries is not None and m.boundaries.file == path
    assert load_mapping(write(tmp_path, BASE)).boundaries is None


def test_missing_file(tmp_path: Path):
    msg = error_of(tmp_path, with_boundaries(file="nowhere.geojson"))
    one_line(msg, "city.yml", "boundaries.file", "nowhere.geojson", "does not exist")


def test_not_json_and_not_a_feature_collection(tmp_path: Path):
    (tmp_path / "sources").mkdir()
    (tmp_path / "sources" / "areas.geojson").write_text("{not json")
    one_line(error_of(tmp_path, with_boundaries()), "city.yml", "boundaries.file", "not JSON")
    (tmp_path / "sources" / "areas.geojson").write_text(json.dumps(feature("1")))
    msg = error_of(tmp_path, with_boundaries())
    one_line(msg, "city.yml", "boundaries.file", "FeatureCollection", "'Feature'")
    geojson(tmp_path, [])
    one_line(error_of(tmp_path, with_boundaries()), "boundaries.file", "with features")


def test_wrong_geometry(tmp_path: Path):
    geojson(tmp_path, [feature("1"), feature("2", "Point")])
    msg = error_of(tmp_path, with_boundaries())
    one_line(msg, "city.yml", "boundaries.file", "feature 1", "Point", "Polygon or MultiPolygon")


def test_missing_property(tmp_path: Path):
    geojson(tmp_path, [feature("1"), {**feature("2"), "properties": {"DIST": "2"}}])
    msg = error_of(tmp_path, with_boundaries())
    one_line(msg, "city.yml", "boundaries.area_property", "feature 1", "'BEAT'", "DIST")


def test_codes_that_normalise_to_nothing_or_to_the_same_area(tmp_path: Path):
    geojson(tmp_path, [feature("X1")])  # no leading digits: no area code
    one_line(error_of(tmp_path, with_boundaries()), "boundaries.area_property", "no area code")
    geojson(tmp_path, [feature("10H50"), feature("10H60")])
    msg = error_of(tmp_path, with_boundaries())
    one_line(msg, "boundaries.area_property", "features 0 and 1", "'10'")


@pytest.mark.parametrize(
    "spec, key, problem",
    [
        ({"file": "areas.geojson"}, "boundaries.area_property", "missing"),
        ({"file": "a", "area_property": "BEAT", "x": 1}, "boundaries.x", "unknown key"),
        ({"file": "", "area_property": "BEAT"}, "boundaries.file", "non-empty string"),
    ],
)
def test_malformed_key(tmp_path: Path, spec: dict, key: str, problem: str):
    one_line(error_of(tmp_path, variant(boundaries=spec)), "city.yml", key, problem)


def test_normalise_area_matches_the_loader():
    assert normalise_area("\u00a0 B2 \t") == "B2"
    assert normalise_area("  ") is None
    assert normalise_area(" 10H50", r"^(\d+)") == "10"


def test_publish_writes_the_sources_with_boundaries_and_removes_stale_files(tmp_path: Path):
    geojson(tmp_path, [feature("3H10")])
    write(tmp_path, with_boundaries())
    plain = {**BASE, "name": "plain"}
    write(tmp_path, plain, stem="plain")
    target = tmp_path / "static" / "boundaries"
    target.mkdir(parents=True)
    (target / "gone.geojson").write_text("{}")  # a source that no longer has boundaries
    written = publish_boundaries(target, tmp_path / "sources", names=["city", "plain"])
    assert written == {"city": target / "city.geojson"}
    assert sorted(p.name for p in target.iterdir()) == ["city.geojson", INDEX]
    assert json.loads((target / INDEX).read_text()) == {"sources": {"city": "city.geojson"}}
    (shape,) = json.loads((target / "city.geojson").read_text())["features"]
    assert shape["properties"][BOUNDARY_AREA_PROPERTY] == "3"
    assert publish_boundaries(target, tmp_path / "sources", names=["plain"]) == {}
    assert json.loads((target / INDEX).read_text()) == {"sources": {}}
    assert not (target / "city.geojson").exists()
    assert publish_boundaries(target, tmp_path / "sources", names=[]) == {}  # no incident source


def test_boston_sample_boundaries_are_generated_and_match_its_districts():
    assert BOSTON_BOUNDARIES.read_text(encoding="utf-8") == render(boston_boundaries()), (
        "sources/boundaries/boston_sample.geojson is stale: run python -m samples.boundaries"
    )
    m = load_mapping(REPO_ROOT / "sources" / "boston.yml")
    assert m.boundaries is not None and m.boundaries.file == BOSTON_BOUNDARIES
    assert sorted(m.boundaries.areas) == sorted(d[0] for d in BOSTON_DISTRICTS)


def test_voronoi_cells_hold_their_centre_and_no_other():
    centres = [(lon, lat) for _, _, lat, lon in BOSTON_DISTRICTS]
    cells = voronoi_cells(centres)

    def inside(p: tuple[float, float], poly: list[tuple[float, float]]) -> bool:
        # convex and counter-clockwise: left of (or on) every edge
        return all(
            (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) >= 0
            for a, b in zip(poly, poly[1:] + poly[:1], strict=True)
        )

    for i, cell in enumerate(cells):
        assert len(cell) >= 3
        assert [inside(c, cell) for c in centres] == [j == i for j in range(len(centres))]
