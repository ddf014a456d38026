"""Input resolution: a file, a folder, a glob or an http(s) URL → local files to read.

URLs are downloaded into a cache folder (the loader uses `<warehouse dir>/downloads`); a
conditional request (ETag / Last-Modified) avoids downloading an unchanged file again. A
download is accepted only when complete (Content-Length, digests), within an overall and an
idle deadline, with retries for transient failures (`download`, `HttpSettings`).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import glob
import hashlib
import http.client
import json
import math
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

_GLOB_CHARS = re.compile(r"[*?\[]")
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


# --------------------------------------------------------------------------------------------
# downloads


TIMEOUT_ENV = "CRIMECAST_HTTP_TIMEOUT_S"
IDLE_TIMEOUT_ENV = "CRIMECAST_HTTP_IDLE_TIMEOUT_S"
ATTEMPTS_ENV = "CRIMECAST_HTTP_ATTEMPTS"
RETRY_DELAY_ENV = "CRIMECAST_HTTP_RETRY_DELAY_S"
_RETRY_STATUS = {408, 429}  # and every 5xx


@dataclass(frozen=True)
class HttpSettings:
    """Limits of one download: `timeout_s` for the whole download, every attempt and pause
    included; `idle_timeout_s` for any single wait on the network (connect, or a read that
    brings no byte); `attempts` in all for a transient failure (5xx, 408, 429, a reset or a
    body that ends early), pausing `retry_delay_s`, then twice that, and so on."""

    timeout_s: float = 600.0
    idle_timeout_s: float = 60.0
    attempts: int = 3
    retry_delay_s: float = 1.0

    @classmethod
    def from_env(cls) -> HttpSettings:
        """`CRIMECAST_HTTP_TIMEOUT_S`, `CRIMECAST_HTTP_IDLE_TIMEOUT_S`, `CRIMECAST_HTTP_ATTEMPTS`,
        `CRIMECAST_HTTP_RETRY_DELAY_S`; unset → the defaults. Raises FetchError for a value
        that is not a number in range."""
        d = cls()
        return cls(
            timeout_s=_env_float(TIMEOUT_ENV, d.timeout_s, positive=True),
            idle_timeout_s=_env_float(IDLE_TIMEOUT_ENV, d.idle_timeout_s, positive=True),
            attempts=_env_attempts(d.attempts),
            retry_delay_s=_env_float(RETRY_DELAY_ENV, d.retry_delay_s, positive=False),
        )


def _env_float(name: str, default: float, *, positive: bool) -> float:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        kind = "a positive" if positive else "a non-negative"
        raise FetchError(f"{name}={value!r} must be {kind} number of seconds")
    return number


def _env_attempts(default: int) -> int:
    value = os.environ.get(ATTEMPTS_ENV, "").strip()
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise FetchError(f"{ATTEMPTS_ENV}={value!r} must be a whole number of attempts, 1 or more")
    return int(value)


class _Failed(Exception):
    """One attempt failed: `reason` for the message; `retry` when another attempt may help."""

    def __init__(self, reason: str, *, retry: bool) -> None:
        super().__init__(reason)
        self.reason, self.retry = reason, retry


class _Deadline:
    """The overall deadline of one download. When it passes, a timer thread shuts the open
    socket down, which wakes a read blocked anywhere in http.client (headers or body): a
    per-read timeout alone lets a server that trickles a byte every few seconds hold a load
    forever."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds
        self._fired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    @property
    def expired(self) -> bool:
        return self._fired or time.monotonic() >= self._end

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            fired = self._fired
        if fired:
            _shutdown(sock)

    def _fire(self) -> None:
        with self._lock:
            self._fired = True
            sock = self._sock
        if sock is not None:
            _shutdown(sock)

    def cancel(self) -> None:
        self._timer.cancel()


def _shutdown(sock: socket.socket) -> None:
    # the plain socket's method, also for an SSLSocket: no TLS state is touched; a socket
    # already closed raises OSError
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watched:
    """An HTTP(S) connection whose socket the deadline can shut down."""

    def __init__(self, *args: Any, deadline: _Deadline, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline = deadline

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self._deadline.watch(self.sock)  # type: ignore[attr-defined]


class _HTTPConnection(_Watched, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_Watched, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_HTTPConnection, deadline=self.deadline), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        conn = functools.partial(_HTTPSConnection, deadline=self.deadline)
        return self.do_open(conn, req, context=self._context)


def download(url: str, cache_dir: Path, http_settings: HttpSettings | None = None) -> Path:
    """Download `url` into `cache_dir` and return the local path.

    The body goes to a `.part` file and replaces the cached copy (`os.replace`) only once it
    is complete: as many bytes as `Content-Length` says, and matching any digest the server
    sends (`Repr-Digest`, `Content-Digest`, `Digest`: sha-256 / sha-512 / md5; `Content-MD5`).
    A transient failure is retried with exponential backoff; the whole download has one
    deadline (`HttpSettings`, default from the environment). Re-uses the cached copy when the
    server answers 304 Not Modified to the conditional request (ETag / Last-Modified of the
    cached copy). Raises FetchError naming the URL and the reason (bytes received vs expected,
    HTTP status, network error); the cached copy, if any, is then left as it was."""
    policy = http_settings or HttpSettings.from_env()
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_path(url, cache_dir)
    meta_path = target.with_name(target.name + ".meta.json")
    part = target.with_name(target.name + ".part")
    headers = {"User-Agent": "crimecast-loader/0.1", **_conditional_headers(target, meta_path)}
    deadline = _Deadline(policy.timeout_s)
    opener = urllib.request.build_opener(_HTTPHandler(deadline), _HTTPSHandler(deadline))
    attempt = 0
    try:
        while True:
            attempt += 1
            try:
                meta = _attempt(opener, url, headers, part, policy, deadline)
                break
            except _Failed as exc:
                part.unlink(missing_ok=True)
                delay = policy.retry_delay_s * 2 ** (attempt - 1)
                if not exc.retry or attempt >= policy.attempts or delay >= deadline.remaining():
                    tries = f"; tried {attempt} times" if attempt > 1 else ""
                    raise FetchError(f"{url}: {exc.reason}{tries}; nothing loaded") from None
                time.sleep(delay)
    finally:
        deadline.cancel()
    if meta is None:  # 304 Not Modified: the cached copy is current
        if not target.exists():
            raise FetchError(f"{url}: HTTP 304 Not Modified but no cached copy; nothing loaded")
        return target
    # the old validators must not outlive the old bytes (a kill between the two steps then
    # costs one unconditional download, never a stale copy)
    meta_path.unlink(missing_ok=True)
    os.replace(part, target)
    tmp_meta = meta_path.with_name(meta_path.name + ".part")
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp_meta, meta_path)
    return target


def _conditional_headers(target: Path, meta_path: Path) -> dict[str, str]:
    if not (target.exists() and meta_path.exists()):
        return {}
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return {}
    out = {}
    if meta.get("etag"):
        out["If-None-Match"] = meta["etag"]
    if meta.get("last_modified"):
        out["If-Modified-Since"] = meta["last_modified"]
    return out


def _attempt(
    opener: urllib.request.OpenerDirector,
    url: str,
    headers: dict[str, str],
    part: Path,
    policy: HttpSettings,
    deadline: _Deadline,
) -> dict[str, Any] | None:
    """One request: the cache metadata of a complete, verified body written to `part`, or
    None for 304 Not Modified. Raises _Failed."""
    received, expected = 0, None

    def progress() -> str:
        of = f" of {expected:,}" if expected is not None else ""
        return f"{received:,}{of} bytes"

    def timed_out() -> _Failed:
        return _Failed(
            f"download not complete within {policy.timeout_s:g} s ({TIMEOUT_ENV}); "
            f"{progress()} received",
            retry=False,
        )

    request = urllib.request.Request(url, headers=headers)
    timeout = max(0.001, min(policy.idle_timeout_s, deadline.remaining()))
    try:
        with opener.open(request, timeout=timeout) as resp, part.open("wb") as out:
            expected = resp.length  # Content-Length (None when chunked or absent)
            digests = _expected_digests(resp.headers)
            hashers = {algo: hashlib.new(algo) for _h, _n, algo, _d in digests}
            # read1: at most one system call per read, so the deadline is checked between
            # the bytes of a trickle (read() would wait for a whole chunk)
            while chunk := resp.read1(_CHUNK):
                out.write(chunk)
                received += len(chunk)
                for h in hashers.values():
                    h.update(chunk)
                if deadline.expired and received != expected:
                    raise timed_out()
            # the deadline's shutdown also ends a body: only a complete one is taken then
            if deadline.expired and received != expected:
                raise timed_out()
            if expected is not None and received < expected:
                raise _Failed(f"body ended after {progress()} (Content-Length)", retry=True)
            for header, name, algo, digest in digests:
                got = hashers[algo].digest()
                if got != digest:
                    raise _Failed(
                        f"the body ({received:,} bytes) does not match its {header} header "
                        f"({name} {base64.b64encode(digest).decode()}, received "
                        f"{base64.b64encode(got).decode()})",
                        retry=False,
                    )
            return {
                "url": url,
                "etag": resp.headers.get("ETag"),
                "last_modified": resp.headers.get("Last-Modified"),
                "bytes": received,
            }
    except _Failed:
        raise
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 304 and ("If-None-Match" in headers or "If-Modified-Since" in headers):
            return None
        transient = exc.code >= 500 or exc.code in _RETRY_STATUS
        raise _Failed(f"HTTP {exc.code} {exc.reason}", retry=transient) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        if deadline.expired:
            raise timed_out() from None
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, TimeoutError):
            after = f" after {progress()}" if received or expected is not None else ""
            raise _Failed(
                f"no data for {policy.idle_timeout_s:g} s ({IDLE_TIMEOUT_ENV}){after}", retry=True
            ) from None
        if isinstance(reason, http.client.IncompleteRead):
            raise _Failed(f"chunked body ended early, after {progress()}", retry=True) from None
        transient = isinstance(reason, ConnectionError | http.client.HTTPException)
        text = str(reason) or type(reason).__name__
        if received:
            text += f" after {progress()}"
        raise _Failed(text, retry=transient) from None


_DIGEST_ALGOS = {"sha-256": "sha256", "sha-512": "sha512", "md5": "md5"}


def _expected_digests(headers: Message) -> list[tuple[str, str, str, bytes]]:
    """(header, algorithm as sent, hashlib name, digest) of every digest the response
    declares that we can check: `Content-Digest` and `Content-MD5` cover the bytes as sent;
    `Repr-Digest` (RFC 9530) and `Digest` (RFC 3230) the representation, which is the same
    bytes unless a content coding was applied (we ask for none)."""
    coded = headers.get("Content-Encoding", "identity").strip().lower() not in ("", "identity")
    out = []
    for header in ("Content-Digest", "Repr-Digest", "Digest"):
        if coded and header != "Content-Digest":
            continue
        for value in headers.get_all(header) or []:
            for item in value.split(","):
                name, sep, encoded = item.strip().partition("=")
                algo = _DIGEST_ALGOS.get(name.strip().lower())
                digest = _decode_digest(encoded.strip().strip(":"), algo) if algo else None
                if sep and algo and digest:
                    out.append((header, name.strip().lower(), algo, digest))
    md5 = headers.get("Content-MD5")
    digest = _decode_digest(md5.strip(), "md5") if md5 else None
    if digest:
        out.append(("Content-MD5", "md5", "md5", digest))
    return out


def _decode_digest(encoded: str, algo: str) -> bytes | None:
    """base64 as the RFCs say; hex as some servers send; None when neither fits the size."""
    size = hashlib.new(algo).digest_size
    try:
        raw = base64.b64decode(encoded, validate=True)
        if len(raw) == size:
            return raw
    except ValueError:
        pass
    try:
        raw = bytes.fromhex(encoded)
    except ValueError:
        return None
    return raw if len(raw) == size else None
