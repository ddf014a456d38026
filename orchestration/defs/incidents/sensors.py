"""A sensor per the incident inputs: a new or changed file in a city's input (folder, glob, file
or URL) starts a run of that city's partition of ``refresh_city``.

A local input is fingerprinted by the name, size and modification time of every file it holds;
a URL by its ETag / Last-Modified / Content-Length (one HEAD request). The fingerprints are the
sensor's cursor; the first evaluation records them without starting anything (what is there
was loaded by the runs before the sensor was turned on, or will be by the next schedule).
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from pathlib import Path

import dagster as dg

from ingest.fetch import FetchError, is_url, resolve_inputs
from ingest.mapping import MappingError, discover_mappings, load_mapping
from orchestration.config import REPO_ROOT, SOURCES_DIR, settings
from orchestration.defs.incidents.raw import INCIDENT_PARTITIONS

CITY_JOB = "refresh_city"


def _url_fingerprint(url: str, timeout_s: float = 10.0) -> str | None:
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as reply:
            h = reply.headers
            parts = [h.get("ETag"), h.get("Last-Modified"), h.get("Content-Length")]
    except OSError:
        return None  # unreachable now: no change seen (the next tick asks again)
    return "|".join(p or "" for p in parts) if any(parts) else None


def input_fingerprint(spec: str) -> str | None:
    """A short digest of what ``spec`` (comma-separated files, folders, globs, URLs) holds now;
    None when it names the generated sample or nothing readable."""
    parts = []
    for item in (s.strip() for s in spec.split(",")):
        if not item or item == "sample":
            continue
        if is_url(item):
            fp = _url_fingerprint(item)
            if fp is not None:
                parts.append(f"{item}={fp}")
            continue
        try:
            files = resolve_inputs([item], cache_dir=Path("/nonexistent"), base_dirs=[REPO_ROOT])
        except FetchError:
            continue
        for f in files:
            st = f.path.stat()
            parts.append(f"{f.path}:{st.st_size}:{st.st_mtime_ns}")
    if not parts:
        return None
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()[:16]


def city_input(city: str) -> str:
    """The input a run of ``city`` reads: CRIMECAST_INPUT_<CITY>, else the mapping's."""
    spec = settings().input_for(city)
    if spec:
        return spec
    try:
        (path,) = discover_mappings(SOURCES_DIR, [city])
        return load_mapping(path).default_input
    except MappingError:
        return ""


@dg.sensor(
    job_name=CITY_JOB,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Starts a run of a city's partition when a file in its input (folder, glob, "
    "file: name, size, modification time; URL: ETag, Last-Modified, size) is new or changed.",
)
def new_incident_files(context: dg.SensorEvaluationContext):
    seen = json.loads(context.cursor) if context.cursor else {}
    now, requests = {}, []
    for city in INCIDENT_PARTITIONS.get_partition_keys():
        fp = input_fingerprint(city_input(city))
        if fp is None:
            continue
        now[city] = fp
        if city in seen and seen[city] != fp:
            requests.append(
                dg.RunRequest(
                    run_key=f"{city}:{fp}",
                    partition_key=city,
                    tags={"crimecast/trigger": "new_incident_files"},
                )
            )
    context.update_cursor(json.dumps(now, sort_keys=True))
    if not requests:
        return dg.SkipReason(f"no new or changed input files ({', '.join(now) or 'none watched'})")
    return requests
