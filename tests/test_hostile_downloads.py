"""Hostile downloads (issue 17, items 1 and 5): a URL source served by a real HTTP server on
127.0.0.1 that cuts its body short, trickles, stalls, fails with 5xx or sends a wrong digest;
and the coverage guard of the `raw/incidents` volume check (a load whose last day moves
earlier is blocked unless forced). Every input is built here, loaded through the loader a
user runs (`load_source`, or the Dagster asset and its check), and each case asserts the
message and the state of the warehouse and of the download cache (docs/reliability.md,
"Downloads")."""

from __future__ import annotations

import base64
import hashlib
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from ingest.fetch import cache_path
from ingest.loader import LoadError, load_source
from ingest.mapping import SourceMapping, load_mapping
from orchestration.definitions import build_resources
from orchestration.defs.incidents.raw import raw_incidents
from orchestration.defs.serving.publish import (
    coverage_problems,
    failed_blocking_checks,
    published_warehouse,
    raw_incidents_volume,
)
from samples.incidents import HOUSTON_COLUMNS

REPO = Path(__file__).resolve().parents[1]
RAW_TABLES = ("incidents", "source_files", "sources")


# --------------------------------------------------------------------------------------------
# inputs


def houston_csv(days: int, per_day: int = 2, start: date = date(2023, 1, 1)) -> bytes:
    """A Houston release (sources/houston.yml's schema): `per_day` thefts a day for `days`
    days from `start`."""
    lines = [",".join(HOUSTON_COLUMNS)]
    for d in range(days):
        day = start + timedelta(days=d)
        for k in range(per_day):
            row = dict.fromkeys(HOUSTON_COLUMNS, "-")
            row |= {
                "time": f"{day} 18:00:00",
                "date": f"{day:%m/%d/%Y}",
                "hour": str(8 + k),
                "premise": "20A",
                "offense": "theft",
                "beat": f"{10 + k}H10",
                "number": "1",
            }
            lines.append(",".join(row[c] for c in HOUSTON_COLUMNS))
    return ("\n".join(lines) + "\n").encode()


def cut_at_line(body: bytes, fraction: float) -> int:
    """Length of the body cut at the end of a line, near `fraction` of it."""
    return body.rindex(b"\n", 0, int(len(body) * fraction)) + 1


def cut_mid_row(body: bytes, fraction: float) -> int:
    """Length of the body cut inside a row (a few bytes after a line's start)."""
    return cut_at_line(body, fraction) + 7


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


# --------------------------------------------------------------------------------------------
# a scriptable HTTP server


@dataclass
class Reply:
    """One response. `length`: the Content-Length sent (default: the body's; None: no header,
    the end of the body is the end of the connection); `cut`: bytes of the body actually sent
    before the connection is closed; `trickle_s`: a pause before each byte (of the head too
    with `trickle_head`); `stall_s`: a pause before anything is sent."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None | str = "auto"
    cut: int | None = None
    trickle_s: float = 0.0
    trickle_head: bool = False
    stall_s: float = 0.0


class Server:
    def __init__(self, base: str) -> None:
        self.base = base
        self.routes: dict[str, list[Reply]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []

    def serve(self, path: str, *replies: Reply) -> str:
        """Answer `path` with `replies` in turn, the last one from then on; returns the URL."""
        self.routes[path] = list(replies)
        return self.base + path

    def hits(self, path: str) -> list[dict[str, str]]:
        return [h for p, h in self.requests if p == path]


def _make_handler(server: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.close_connection = True
            server.requests.append((self.path, dict(self.headers.items())))
            queue = server.routes.get(self.path) or [Reply(status=404)]
            reply = queue.pop(0) if len(queue) > 1 else queue[0]
            status, headers, body = reply.status, dict(reply.headers), reply.body
            etag = headers.get("ETag")
            if etag and self.headers.get("If-None-Match") == etag:
                status, body = 304, b""
            if reply.length == "auto":
                headers["Content-Length"] = str(len(body))
            elif reply.length is not None:
                headers["Content-Length"] = str(reply.length)
            head = f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            head += "Connection: close\r\n\r\n"
            sent = body if reply.cut is None else body[: reply.cut]
            try:
                time.sleep(reply.stall_s)
                self._send(head.encode(), reply.trickle_s if reply.trickle_head else 0)
                self._send(sent, reply.trickle_s)
            except OSError:
                pass  # the client gave up: expected in the deadline cases

        def _send(self, data: bytes, pause: float) -> None:
            if not pause:
                self.wfile.write(data)
                return
            for i in range(len(data)):
                time.sleep(pause)
                self.wfile.write(data[i : i + 1])

    return Handler


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A local server in a thread, with fast retries and test-sized deadlines."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CRIMECAST_HTTP_TIMEOUT_S", "10")
    monkeypatch.setenv("CRIMECAST_HTTP_IDLE_TIMEOUT_S", "2")
    monkeypatch.setenv("CRIMECAST_HTTP_RETRY_DELAY_S", "0.01")
    monkeypatch.delenv("CRIMECAST_HTTP_ATTEMPTS", raising=False)

    class Quiet(http.server.ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            pass

    state = Server("")
    httpd = Quiet(("127.0.0.1", 0), _make_handler(state))
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


# --------------------------------------------------------------------------------------------
# warehouse helpers


@pytest.fixture
def houston() -> SourceMapping:
    return load_mapping(REPO / "sources" / "houston.yml")


def raw_state(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    """Every row of raw.incidents / source_files / sources ({} before the first load)."""
    have = {
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'raw'"
        ).fetchall()
    }
    return {
        t: con.execute(f"select * from raw.{t} order by all").fetchall()
        for t in RAW_TABLES
        if t in have
    }


def cached(url: str, tmp_warehouse: Path) -> bytes | None:
    path = cache_path(url, tmp_warehouse.parent / "downloads")
    return path.read_bytes() if path.exists() else None


def load_error(con: duckdb.DuckDBPyConnection, mapping: SourceMapping, url: str) -> str:
    with pytest.raises(LoadError) as exc:
        load_source(con, mapping, url)
    message = str(exc.value)
    assert "\n" not in message and exc.value.file == url
    return message


def first_load(
    server: Server, con: duckdb.DuckDBPyConnection, mapping: SourceMapping, days: int = 60
) -> tuple[str, bytes, dict[str, list[tuple]]]:
    """Day one: a complete release loads. Returns (url, body, raw state)."""
    body = houston_csv(days)
    url = server.serve("/crime.csv", Reply(body, headers={"ETag": '"v1"'}))
    result = load_source(con, mapping, url)
    assert result.rows_inserted == 2 * days and result.files_loaded == [url]
    return url, body, raw_state(con)


# --------------------------------------------------------------------------------------------
# truncated bodies


def test_a_body_cut_at_a_line_boundary_is_rejected_and_keeps_the_previous_load(
    server: Server, houston: SourceMapping, warehouse_con, tmp_warehouse: Path
):
    url, day1, before = first_load(server, warehouse_con, houston)
    day2 = houston_csv(70)
    cut = cut_at_line(day2, 0.9)  # a valid, smaller CSV: what used to load as complete
    server.serve("/crime.csv", Reply(day2, cut=cut, headers={"ETag": '"v2"'}))

    message = load_error(warehouse_con, houston, url)
    assert message == (
        f"source 'houston': {url}: body ended after {cut:,} of {len(day2):,} bytes "
        "(Content-Length); tried 3 times; nothing loaded"
    )
    assert raw_state(warehouse_con) == before
    assert cached(url, tmp_warehouse) == day1  # the good copy stays; no .part is left
    assert not list((tmp_warehouse.parent / "downloads").glob("*.part"))
    # the failed download did not replace the cache's validators: the next request is still
    # conditional on day one's ETag
    assert [h.get("If-None-Match") for h in server.hits("/crime.csv")] == [None] + ['"v1"'] * 3


def test_a_first_load_cut_mid_row_names_the_download_not_a_bad_row(
    server: Server, houston: SourceMapping, warehouse_con, tmp_warehouse: Path
):
    body = houston_csv(40)
    cut = cut_mid_row(body, 0.5)
    url = server.serve("/crime.csv", Reply(body, cut=cut))
    message = load_error(warehouse_con, houston, url)
    assert f"{url}: body ended after {cut:,} of {len(body):,} bytes (Content-Length)" in message
    assert raw_state(warehouse_con) == {}
    assert cached(url, tmp_warehouse) is None


def test_a_body_cut_once_is_retried_and_loads_complete(
    server: Server, houston: SourceMapping, warehouse_con
):
    body = houston_csv(30)
    url = server.serve("/crime.csv", Reply(body, cut=cut_at_line(body, 0.5)), Reply(body))
    result = load_source(warehouse_con, houston, url)
    assert result.rows_inserted == 60 and len(server.hits("/crime.csv")) == 2


# --------------------------------------------------------------------------------------------
# deadlines


@pytest.mark.parametrize("trickle_head", [False, True], ids=["body", "status line and headers"])
def test_a_trickling_server_fails_at_the_overall_deadline(
    server: Server,
    houston: SourceMapping,
    warehouse_con,
    monkeypatch: pytest.MonkeyPatch,
    trickle_head: bool,
):
    # one byte every 0.3 s never trips the idle (per-read) timeout of 1 s
    monkeypatch.setenv("CRIMECAST_HTTP_TIMEOUT_S", "1.5")
    monkeypatch.setenv("CRIMECAST_HTTP_IDLE_TIMEOUT_S", "1")
    body = houston_csv(5)
    url = server.serve("/slow.csv", Reply(body, trickle_s=0.3, trickle_head=trickle_head))
    t0 = time.monotonic()
    message = load_error(warehouse_con, houston, url)
    elapsed = time.monotonic() - t0
    assert elapsed < 2.5, f"took {elapsed:.1f} s"
    assert message.startswith(
        f"source 'houston': {url}: download not complete within 1.5 s (CRIMECAST_HTTP_TIMEOUT_S); "
    )
    received = "0 bytes received" if trickle_head else f" of {len(body):,} bytes received"
    assert message.endswith(f"{received}; nothing loaded")
    assert len(server.hits("/slow.csv")) == 1  # the deadline covers every attempt
    assert raw_state(warehouse_con) == {}


def test_a_stalled_server_fails_at_the_idle_timeout_after_retries(
    server: Server, houston: SourceMapping, warehouse_con, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("CRIMECAST_HTTP_IDLE_TIMEOUT_S", "0.3")
    monkeypatch.setenv("CRIMECAST_HTTP_ATTEMPTS", "2")
    body = houston_csv(5)
    url = server.serve("/stall.csv", Reply(body, stall_s=3))
    t0 = time.monotonic()
    message = load_error(warehouse_con, houston, url)
    assert time.monotonic() - t0 < 2
    assert message == (
        f"source 'houston': {url}: no data for 0.3 s (CRIMECAST_HTTP_IDLE_TIMEOUT_S); "
        "tried 2 times; nothing loaded"
    )
    assert len(server.hits("/stall.csv")) == 2 and raw_state(warehouse_con) == {}


@pytest.mark.parametrize(
    ("var", "value", "problem"),
    [
        ("CRIMECAST_HTTP_TIMEOUT_S", "soon", "must be a positive number of seconds"),
        ("CRIMECAST_HTTP_IDLE_TIMEOUT_S", "0", "must be a positive number of seconds"),
        ("CRIMECAST_HTTP_RETRY_DELAY_S", "-1", "must be a non-negative number of seconds"),
        ("CRIMECAST_HTTP_ATTEMPTS", "0", "must be a whole number of attempts, 1 or more"),
    ],
)
def test_a_bad_http_setting_is_named(
    server: Server, houston: SourceMapping, warehouse_con, monkeypatch, var, value, problem
):
    monkeypatch.setenv(var, value)
    url = server.serve("/crime.csv", Reply(houston_csv(3)))
    assert load_error(warehouse_con, houston, url) == f"source 'houston': {var}={value!r} {problem}"
    assert server.hits("/crime.csv") == [] and raw_state(warehouse_con) == {}


# --------------------------------------------------------------------------------------------
# HTTP errors


def test_a_500_then_a_200_is_retried_and_loads(
    server: Server, houston: SourceMapping, warehouse_con
):
    body = houston_csv(20)
    url = server.serve("/crime.csv", Reply(b"busy", status=500), Reply(body))
    result = load_source(warehouse_con, houston, url)
    assert result.rows_inserted == 40 and len(server.hits("/crime.csv")) == 2
    assert raw_state(warehouse_con)["source_files"][0][1] == url


def test_a_persistent_500_fails_with_the_url_and_keeps_the_previous_load(
    server: Server, houston: SourceMapping, warehouse_con, tmp_warehouse: Path
):
    url, day1, before = first_load(server, warehouse_con, houston)
    server.serve("/crime.csv", Reply(b"down", status=500))
    message = load_error(warehouse_con, houston, url)
    assert message == (
        f"source 'houston': {url}: HTTP 500 Internal Server Error; tried 3 times; nothing loaded"
    )
    assert len(server.hits("/crime.csv")) == 1 + 3
    assert raw_state(warehouse_con) == before and cached(url, tmp_warehouse) == day1


def test_a_404_is_not_retried(server: Server, houston: SourceMapping, warehouse_con):
    url = server.base + "/gone.csv"
    message = load_error(warehouse_con, houston, url)
    assert message == f"source 'houston': {url}: HTTP 404 Not Found; nothing loaded"
    assert len(server.hits("/gone.csv")) == 1


# --------------------------------------------------------------------------------------------
# digests


def _digest_headers(body: bytes) -> list[tuple[str, str]]:
    return [
        ("Digest", f"sha-256={b64(hashlib.sha256(body).digest())}"),
        ("Repr-Digest", f"sha-256=:{b64(hashlib.sha256(body).digest())}:"),
        ("Content-Digest", f"sha-512=:{b64(hashlib.sha512(body).digest())}:"),
        ("Content-MD5", b64(hashlib.md5(body).digest())),
    ]


@pytest.mark.parametrize("header", ["Digest", "Repr-Digest", "Content-Digest", "Content-MD5"])
def test_a_checksum_mismatch_is_rejected_and_a_match_loads(
    server: Server, houston: SourceMapping, warehouse_con, tmp_warehouse: Path, header: str
):
    url, day1, before = first_load(server, warehouse_con, houston)
    day2 = houston_csv(61)
    # the digest of what the server meant to send; the bytes differ (a flipped day)
    meant = day2.replace(b"01/05/2023", b"01/06/2023", 1)
    value = dict(_digest_headers(meant))[header]
    server.serve("/crime.csv", Reply(day2, headers={header: value}))
    message = load_error(warehouse_con, houston, url)
    assert message.startswith(
        f"source 'houston': {url}: the body ({len(day2):,} bytes) does not match its "
        f"{header} header ("
    )
    assert message.endswith("; nothing loaded")
    assert len(server.hits("/crime.csv")) == 2  # deterministic: not retried
    assert raw_state(warehouse_con) == before and cached(url, tmp_warehouse) == day1

    server.serve("/crime.csv", Reply(day2, headers={header: dict(_digest_headers(day2))[header]}))
    assert load_source(warehouse_con, houston, url).rows_total == 2 * 61
    assert cached(url, tmp_warehouse) == day2


# --------------------------------------------------------------------------------------------
# the second daily load, end to end through the loader


def test_daily_loads_truncated_then_complete_then_not_modified(
    server: Server, houston: SourceMapping, warehouse_con, tmp_warehouse: Path
):
    url, day1, before = first_load(server, warehouse_con, houston, days=60)

    # day two: ten more days, the body cut at a line boundary (what the issue saw published)
    day2 = houston_csv(70)
    server.serve("/crime.csv", Reply(day2, cut=cut_at_line(day2, 0.9), headers={"ETag": '"v2"'}))
    assert "(Content-Length)" in load_error(warehouse_con, houston, url)
    assert raw_state(warehouse_con) == before
    assert cached(url, tmp_warehouse) == day1

    # day three: the complete body replaces day one's rows
    server.serve("/crime.csv", Reply(day2, headers={"ETag": '"v2"'}))
    result = load_source(warehouse_con, houston, url)
    assert result.rows_total == 140 and result.files_removed == [url]
    assert result.max_occurred_at.date() == date(2023, 3, 11)
    assert cached(url, tmp_warehouse) == day2

    # day four: 304 Not Modified on the ETag of day three's body: the file is skipped
    after = raw_state(warehouse_con)
    result = load_source(warehouse_con, houston, url)
    assert result.files_skipped == [url] and result.rows_inserted == 0
    assert server.hits("/crime.csv")[-1].get("If-None-Match") == '"v2"'
    now = raw_state(warehouse_con)  # raw.sources records each load's time: not compared
    assert [now["incidents"], now["source_files"]] == [after["incidents"], after["source_files"]]


# --------------------------------------------------------------------------------------------
# coverage guard: the raw/incidents volume check


def test_coverage_problems_compare_the_last_day_of_the_same_input():
    prev = {"houston": {"rows": 100, "input": "u", "last_day": "2023-03-31"}}
    assert coverage_problems({"houston": "2023-03-31"}, {"houston": "u"}, prev) == []
    assert coverage_problems({"houston": "2023-04-02"}, {"houston": "u"}, prev) == []
    assert coverage_problems({"houston": "2023-03-21"}, {"houston": "u"}, prev) == [
        "houston: last day 2023-03-21 is earlier than the previous load's last day 2023-03-31 "
        "of the same input 'u' (10 days lost at the end)"
    ]
    assert coverage_problems({"houston": "2023-03-21"}, {"houston": "v"}, prev) == []
    # a baseline written before the check knew last days: no comparison
    assert coverage_problems({"houston": "2023-01-01"}, {"houston": "u"}, {"houston": {}}) == []


@pytest.fixture
def houston_url_run(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[int], dg.AssetCheckEvaluation]:
    """run(days): serve a complete Houston release of `days` days at the URL configured as
    CRIMECAST_INPUT_HOUSTON, materialize raw/incidents with its volume check (one Dagster
    instance for the test, so earlier evaluations are the baseline) and return the check."""
    warehouse = tmp_path / "w" / "crimecast.duckdb"
    warehouse.parent.mkdir()
    monkeypatch.setenv("CRIMECAST_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("CRIMECAST_SOURCES", "houston")
    monkeypatch.setenv("CRIMECAST_INPUT_HOUSTON", server.base + "/crime.csv")
    for var in ("CRIMECAST_MAX_SHRINK_PCT", "CRIMECAST_FORCE_SHRINK"):
        monkeypatch.delenv(var, raising=False)
    instance = dg.DagsterInstance.ephemeral()
    resources = build_resources(warehouse)

    def run(days: int, also: tuple = ()) -> dg.AssetCheckEvaluation:
        server.serve("/crime.csv", Reply(houston_csv(days)))  # Content-Length right
        result = dg.materialize(
            [raw_incidents, raw_incidents_volume, *also],
            resources=resources,
            instance=instance,
            raise_on_error=False,
            partition_key="houston",
        )
        (ev,) = result.get_asset_check_evaluations()
        con = duckdb.connect(str(warehouse), read_only=True)
        try:  # the load itself is committed either way; the check blocks what follows
            last = con.execute("select max(occurred_at)::date from raw.incidents").fetchone()[0]
        finally:
            con.close()
        assert last == date(2023, 1, 1) + timedelta(days=days - 1)
        run.result = result
        return ev

    run.instance, run.url = instance, server.base + "/crime.csv"
    return run


def test_a_load_that_ends_earlier_is_blocked(server: Server, houston_url_run):
    assert houston_url_run(100).passed  # 2023-01-01 .. 2023-04-10
    # 5 % fewer rows passes the row limit (20 %), but the last five days are gone
    ev = houston_url_run(95)
    assert not ev.passed and ev.severity == dg.AssetCheckSeverity.ERROR
    assert ev.description == (
        "houston: last day 2023-04-05 is earlier than the previous load's last day 2023-04-10 "
        f"of the same input {server.base + '/crime.csv'!r} (5 days lost at the end) "
        "(CRIMECAST_FORCE_SHRINK=1 accepts it for one run)"
    )
    assert not houston_url_run(95).passed  # a failed evaluation is no new baseline


def test_a_forced_shrink_passes_and_becomes_the_baseline(
    houston_url_run, monkeypatch: pytest.MonkeyPatch
):
    assert houston_url_run(100).passed
    monkeypatch.setenv("CRIMECAST_FORCE_SHRINK", "1")
    ev = houston_url_run(70)  # 30 % fewer rows and 30 days fewer: both accepted
    assert ev.passed
    assert ev.description.startswith("accepted (CRIMECAST_FORCE_SHRINK=1): houston: 140 rows")
    assert "last day 2023-03-11 is earlier" in ev.description
    monkeypatch.delenv("CRIMECAST_FORCE_SHRINK")
    assert houston_url_run(70).passed


def test_a_blocked_load_is_not_published(houston_url_run, tmp_path: Path):
    # the warehouse resource's default copy, <warehouse dir>/published/<warehouse file> (the
    # resources were built by the fixture: a CRIMECAST_PUBLISHED set now would not reach them)
    published = tmp_path / "w" / "published" / "crimecast.duckdb"
    assert houston_url_run(100, also=(published_warehouse,)).passed
    assert published.exists()
    before = published.stat().st_mtime_ns
    assert not houston_url_run(95, also=(published_warehouse,)).passed
    result = houston_url_run.result
    assert not result.asset_materializations_for_node("published_warehouse")
    assert published.stat().st_mtime_ns == before
    # what the publish step itself checks before copying (it is also reached when dbt's source
    # tests, modelled as checks of the dbt asset, keep Dagster from skipping it)
    failed = failed_blocking_checks(houston_url_run.instance, result.run_id)
    assert failed == [
        "raw/incidents:volume: houston: last day 2023-04-05 is earlier than the previous "
        "load's last day 2023-04-10 of the same input "
        f"{houston_url_run.url!r} (5 days lost at the end) "
        "(CRIMECAST_FORCE_SHRINK=1 accepts it for one run)"
    ]
