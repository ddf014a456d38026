"""Serving: the Evidence dashboard site over a published, read-only copy of the warehouse.

Asset ``[dashboards, site]`` (group "serving"), downstream of ``[published, warehouse]``:
copies the published copy to where Evidence reads it
(serving/publish.py → ``dashboards/sources/crimecast/crimecast.duckdb``) and the mappings' area
boundaries to its static folder (serving/boundaries.py → ``dashboards/static/boundaries/``), then
``npm run sources`` and ``npm run build`` in ``dashboards/`` (``npm install`` first when
``node_modules`` is missing). The static site lands in ``dashboards/build/``.

``CRIMECAST_SKIP_DASHBOARDS=1`` (the run defaults' ``skip_dashboards``, read when the
resources are built) makes the asset log that it skipped and do nothing else (no copy, no
npm): the in-process pipeline tests materialize every asset and must not spend a minute and
3 GB on a site build; tests/test_dashboards.py builds it on purpose.
"""

import os
import shutil
import subprocess
import time
from collections import deque
from pathlib import Path

import dagster as dg

from orchestration.config import REPO_ROOT
from orchestration.resources import RunDefaults, WarehouseResource
from serving.boundaries import publish_boundaries
from serving.publish import DEFAULT_TARGET, copy_source, publish_copy

DASHBOARDS_DIR = REPO_ROOT / "dashboards"
BUILD_DIR = DASHBOARDS_DIR / "build"
SITE = dg.AssetKey(["dashboards", "site"])
SKIP_ENV = "CRIMECAST_SKIP_DASHBOARDS"

# the published copy waits for every mart and ml asset of the run; the site waits for it
_DEPS = [dg.AssetKey(["published", "warehouse"])]


def skip_requested() -> bool:
    """CRIMECAST_SKIP_DASHBOARDS set (the default of ``RunDefaults.skip_dashboards``)."""
    return os.environ.get(SKIP_ENV, "").strip().lower() in {"1", "true", "yes"}


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise dg.Failure(
            description="npm is not on PATH: the dashboards are an Evidence (Node.js) site. "
            "Install Node.js 20 and npm, or set CRIMECAST_SKIP_DASHBOARDS=1 to skip the site.",
        )
    return npm


def run_npm(args: list[str], log, cwd: Path = DASHBOARDS_DIR) -> float:
    """Run ``npm <args>`` in the dashboards folder, streaming its output to ``log``; returns the
    wall time. Raises dg.Failure with the last lines of output when it fails."""
    cmd = [_npm(), *args]
    env = {**os.environ, "NO_COLOR": "1", "CI": "1"}
    tail: deque[str] = deque(maxlen=40)
    t0 = time.perf_counter()
    log.info(f"$ {' '.join(['npm', *args])}  (in {cwd})")
    with subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if line and "Unknown user config" not in line and "Unknown env config" not in line:
                tail.append(line)
                log.debug(line)
        code = proc.wait()
    elapsed = time.perf_counter() - t0
    if code != 0:
        raise dg.Failure(
            description=f"`npm {' '.join(args)}` failed (exit {code}) in {cwd}",
            metadata={
                "output (last lines)": dg.MetadataValue.md("```\n" + "\n".join(tail) + "\n```")
            },
        )
    return elapsed


def build_site(warehouse: Path, log) -> dict:
    """Publish the copy Evidence reads and build the static site; returns timings and sizes.

    The copy is taken from :func:`serving.publish.copy_source`: the run's published copy,
    else the warehouse itself."""
    t0 = time.perf_counter()
    published = publish_copy(copy_source(warehouse), DEFAULT_TARGET)
    timings = {"publish_s": round(time.perf_counter() - t0, 1)}
    log.info(f"published {warehouse} -> {published}")
    # the map page's polygons (dashboards/static/boundaries/), for the sources that have them
    boundaries = publish_boundaries()
    log.info(f"area boundaries for the map: {sorted(boundaries) or 'none'}")
    if not (DASHBOARDS_DIR / "node_modules").is_dir():
        log.info("dashboards/node_modules is missing: running npm install (about 1-2 minutes)")
        timings["npm_install_s"] = round(run_npm(["install", "--no-audit", "--no-fund"], log), 1)
    timings["npm_sources_s"] = round(run_npm(["run", "sources"], log), 1)
    timings["npm_build_s"] = round(run_npm(["run", "build"], log), 1)
    pages = sorted(str(p.parent.relative_to(BUILD_DIR)) for p in BUILD_DIR.rglob("index.html"))
    size = sum(p.stat().st_size for p in BUILD_DIR.rglob("*") if p.is_file())
    return {
        **timings,
        "pages": pages,
        "site_mb": round(size / 1e6, 1),
        "published_mb": round(published.stat().st_size / 1e6, 1),
        "boundaries": sorted(boundaries),
    }


@dg.asset(
    key=SITE,
    deps=_DEPS,
    group_name="serving",
    kinds={"evidence", "duckdb"},
    description="The Evidence dashboard site (dashboards/build/), built from a published "
    "read-only copy of the warehouse. CRIMECAST_SKIP_DASHBOARDS=1 skips it.",
)
def dashboards_site(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, run_defaults: RunDefaults
) -> dg.MaterializeResult:
    if run_defaults.skip_dashboards:
        context.log.info(f"{SKIP_ENV} is set: skipped the dashboard site (no copy, no npm build)")
        return dg.MaterializeResult(metadata={"skipped": True})
    info = build_site(Path(warehouse.path), context.log)
    context.log.info(f"dashboard site built in {BUILD_DIR}: {info}")
    return dg.MaterializeResult(
        metadata={
            "skipped": False,
            "build_dir": dg.MetadataValue.path(str(BUILD_DIR)),
            "pages": dg.MetadataValue.json(info.pop("pages")),
            "boundaries": dg.MetadataValue.json(info.pop("boundaries")),
            **info,
        }
    )


serving_assets = [dashboards_site]
