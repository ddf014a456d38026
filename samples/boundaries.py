"""Deterministic sample area boundaries (GeoJSON) for the built-in Boston sample.

Each sample district gets the Voronoi cell of its centre (samples/incidents.py,
``BOSTON_DISTRICTS``) inside a box around all of them: the points nearer that centre than any
other. They are not the real police district boundaries; they let the map page draw areas
offline. ``python -m samples.boundaries`` rewrites ``sources/boundaries/boston_sample.geojson``
(the file ``sources/boston.yml`` points at); tests/test_sample.py checks it is up to date.

No geometry library: a cell is the box cut by one half-plane per other centre (clipping a
convex polygon by a line), a few lines of arithmetic; scipy's Voronoi leaves the outer cells
unbounded and would need the same clipping anyway.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from samples.incidents import BOSTON_DISTRICTS

REPO_ROOT = Path(__file__).resolve().parents[1]
BOSTON_BOUNDARIES = REPO_ROOT / "sources" / "boundaries" / "boston_sample.geojson"
#: margin of the box around the centres, in degrees
MARGIN = 0.03

Point = tuple[float, float]


def _clip(poly: list[Point], a: Point, b: Point) -> list[Point]:
    """The part of convex `poly` nearer to `a` than to `b` (Sutherland-Hodgman, one edge)."""
    mx, my = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
    nx, ny = b[0] - a[0], b[1] - a[1]

    def side(p: Point) -> float:  # <= 0: on a's side of the bisector
        return (p[0] - mx) * nx + (p[1] - my) * ny

    out: list[Point] = []
    for i, p in enumerate(poly):
        q = poly[(i + 1) % len(poly)]
        sp, sq = side(p), side(q)
        if sp <= 0:
            out.append(p)
        if (sp < 0 < sq) or (sq < 0 < sp):
            t = sp / (sp - sq)
            out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
    return out


def voronoi_cells(centres: list[Point], margin: float = MARGIN) -> list[list[Point]]:
    """One convex polygon (x, y vertices, counter-clockwise) per centre: its Voronoi cell in
    the box around the centres widened by `margin`."""
    xs, ys = [c[0] for c in centres], [c[1] for c in centres]
    x0, x1, y0, y1 = min(xs) - margin, max(xs) + margin, min(ys) - margin, max(ys) + margin
    cells = []
    for i, c in enumerate(centres):
        poly: list[Point] = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        for j, other in enumerate(centres):
            if j != i:
                poly = _clip(poly, c, other)
        cells.append(poly)
    return cells


def boston_boundaries() -> dict:
    """The FeatureCollection: one Polygon per sample district, property `DISTRICT` (the code
    the incident files carry), coordinates rounded to 6 decimals (about 0.1 m)."""
    centres = [(lon, lat) for _, _, lat, lon in BOSTON_DISTRICTS]
    features = []
    for (code, *_), cell in zip(BOSTON_DISTRICTS, voronoi_cells(centres), strict=True):
        ring = [[round(x, 6), round(y, 6)] for x, y in cell]
        ring.append(ring[0])  # GeoJSON rings are closed
        features.append(
            {
                "type": "Feature",
                "properties": {"DISTRICT": code},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    return {"type": "FeatureCollection", "features": features}


def render(data: dict) -> str:
    """The file's text: one feature per line, so a diff shows which district changed."""
    lines = ",\n".join(json.dumps(f, separators=(",", ":")) for f in data["features"])
    return '{"type":"FeatureCollection","features":[\n' + lines + "\n]}\n"


def main() -> int:
    BOSTON_BOUNDARIES.parent.mkdir(parents=True, exist_ok=True)
    BOSTON_BOUNDARIES.write_text(render(boston_boundaries()), encoding="utf-8")
    print(f"wrote {BOSTON_BOUNDARIES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
