"""Input resolution: a file, a folder, a glob or an http(s) URL → local files to read.

URLs are downloaded into a cache folder (the loader uses `<warehouse dir>/downloads`); a
conditional request (ETag / Last-Modified) avoids downloading an unchanged file again.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_GLOB_CHARS = re.compile(r"[*?\[]")
DOWNLOAD_TIMEOUT_S = 60
_CHUNK = 1 << 20


class FetchError(Exception):
    """An input could not be resolved or downloaded."""


@dataclass(frozen=True)
class InputFile:
    """`path`: the local file to read; `label`: what is recorded as source_file (the absolute
    path, or the URL for a download)."""

    path: Path
    label: str


def is_url(spec: str) -> bool:
    return spec.lower().startswith(("http://", "https://"))


def resolve_inputs(
    specs: Sequence[str],
    *,
    cache_dir: Path,
    pattern: str = "*.csv",
    base_dirs: Sequence[Path] = (),
) -> list[InputFile]:
    """Expand every spec, in order, without duplicates. A relative path is looked up in the
    current directory first, then in each of `base_dirs`. A folder contributes its files
    matching `pattern`, sub-folders included; a glob its matching files (`**` recursive). Raises
    FetchError when a spec matches nothing."""
    out: list[InputFile] = []
    seen: set[str] = set()
    for spec in specs:
        spec = spec.strip()
        if not spec:
            continue
        if is_url(spec):
            items = [InputFile(download(spec, cache_dir), spec)]
        else:
            items = [InputFile(p, str(p)) for p in _local(spec, pattern, base_dirs)]
        for item in items:
            if item.label not in seen:
                seen.add(item.label)
                out.append(item)
    if not out:
        raise FetchError(f"no input files in {', '.join(specs) or '(empty input)'}")
    return out


def _local(spec: str, pattern: str, base_dirs: Sequence[Path]) -> list[Path]:
    expanded = os.path.expanduser(spec)
    candidates = [Path(expanded)]
    if not Path(expanded).is_absolute():
        candidates += [Path(b) / expanded for b in base_dirs]
    is_glob = bool(_GLOB_CHARS.search(expanded))
    for cand in candidates:
        if is_glob:
            found = sorted(Path(p) for p in glob.glob(str(cand), recursive=True))
            files = [p.resolve() for p in found if p.is_file()]
            if files:
                return files
        elif cand.is_dir():
            files = _folder_files(cand, pattern)
            if not files:
                raise FetchError(
                    f"folder {cand} has no files matching {pattern!r} (sub-folders included)"
                )
            return files
        elif cand.is_file():
            return [cand.resolve()]
    where = ", ".join(str(c) for c in candidates)
    if is_glob:
        raise FetchError(f"no files match the glob {spec!r} (looked in: {where})")
    raise FetchError(f"input {spec!r} does not exist (looked for: {where})")


def _folder_files(folder: Path, pattern: str) -> list[Path]:
    """The files under `folder`, sub-folders included, whose path relative to it matches
    `pattern` (from the right, as Path.match: `*.csv` at any depth, `2019/*.csv` in folders
    named 2019), sorted by relative path so the order never depends on the file system.
    Hidden files and folders (`.git`, macOS `._x.csv`) are left out; links to folders are
    not followed (no loops)."""
    found: list[tuple[tuple[str, ...], Path]] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(folder)
            if not name.startswith(".") and rel.match(pattern) and path.is_file():
                found.append((rel.parts, path.resolve()))
    return [path for _, path in sorted(found)]


def cache_path(url: str, cache_dir: Path) -> Path:
    """Where a URL is cached: a short hash of the URL plus its file name."""
    name = Path(urllib.parse.urlparse(url).path).name or "download"
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100]
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{digest}-{name}"


def download(url: str, cache_dir: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> Path:
    """Download `url` into `cache_dir` (atomic rename) and return the local path. Re-uses the
    cached copy when the server answers 304 Not Modified. Raises FetchError with the HTTP
    status (or the network error) on failure."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_path(url, cache_dir)
    meta_path = target.with_name(target.name + ".meta.json")
    headers = {"User-Agent": "crimecast-loader/0.1"}
    if target.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            meta = {}
        if meta.get("etag"):
            headers["If-None-Match"] = meta["etag"]
        if meta.get("last_modified"):
            headers["If-Modified-Since"] = meta["last_modified"]
    request = urllib.request.Request(url, headers=headers)
    part = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp, part.open("wb") as out:
            shutil.copyfileobj(resp, out, _CHUNK)
            meta = {
                "url": url,
                "etag": resp.headers.get("ETag"),
                "last_modified": resp.headers.get("Last-Modified"),
            }
    except urllib.error.HTTPError as exc:
        part.unlink(missing_ok=True)
        if exc.code == 304 and target.exists():
            return target
        raise FetchError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise FetchError(f"download of {url} failed: {reason}") from exc
    os.replace(part, target)
    meta_path.write_text(json.dumps(meta))
    return target
