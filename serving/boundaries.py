"""Area boundaries for the dashboards' map: each source mapping's `boundaries` GeoJSON, copied
into the Evidence static folder with its area codes normalised as the warehouse's `area`.

``publish_boundaries()`` writes ``dashboards/static/boundaries/<source>.geojson`` for every
selected mapping (``CRIMECAST_SOURCES``, else every ``sources/*.yml``) that has `boundaries`,
and ``index.json`` (``{"sources": {"boston": "boston.geojson"}}``), which the map page reads to
choose polygons (Evidence ``<AreaMap>``) or bubbles. Files of sources without boundaries are
removed, so the page never draws stale shapes. Each file is replaced atomically (temp file,
``os.replace``): a build reading the folder sees an old file or a new one, never half of one.

CLI: ``python -m serving.boundaries [--target DIR]`` (``make dashboards``, after
``serving.publish``); the site asset calls it too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from pathlib import Path

from ingest.mapping import MappingError, discover_mappings, load_mapping, normalised_boundaries
from orchestration.config import REPO_ROOT, SOURCES_DIR, settings

DEFAULT_TARGET = REPO_ROOT / "dashboards" / "static" / "boundaries"
INDEX = "index.json"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def publish_boundaries(
    target: Path = DEFAULT_TARGET,
    sources_dir: Path = SOURCES_DIR,
    names: list[str] | None = None,
) -> dict[str, Path]:
    """Write the boundaries of the mappings `names` in `sources_dir` (default: the configured
    sources, every mapping when CRIMECAST_SOURCES is unset; [] none) into `target`; returns
    {source: file written}. Raises MappingError (one line, naming the mapping and the key) for
    a bad mapping or boundaries file."""
    if names is None:
        names = settings().sources
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    # discover_mappings reads no names as every mapping; [] (only France / São Paulo) is none
    paths = discover_mappings(sources_dir, names) if names != [] else []
    for path in paths:
        mapping = load_mapping(path)
        if mapping.boundaries is None:
            continue
        out = target / f"{mapping.name}.geojson"
        _write_atomic(out, json.dumps(normalised_boundaries(mapping), separators=(",", ":")))
        written[mapping.name] = out
    for stale in target.glob("*.geojson"):
        if stale not in written.values():
            stale.unlink()
    index = {"sources": {name: p.name for name, p in sorted(written.items())}}
    _write_atomic(target / INDEX, json.dumps(index, indent=1) + "\n")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m serving.boundaries",
        description="Copy the source mappings' area boundaries into the dashboards' static folder.",
    )
    parser.add_argument("--target", type=Path, default=DEFAULT_TARGET, help="output folder")
    args = parser.parse_args(argv)
    try:
        written = publish_boundaries(args.target)
    except MappingError as exc:
        print(f"boundaries: {exc}", file=sys.stderr)
        return 1
    listed = ", ".join(f"{n} -> {p}" for n, p in written.items()) or "no source has boundaries"
    print(f"boundaries: {listed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
