"""Hostile clients and hostile published copies against the forecast API (issue 17, item 8).

Each input is built here: spoofed ``X-Forwarded-For`` chains, ``Host`` headers, ``HEAD``
requests, and published copies that are missing, random bytes, a folder, a DuckDB file that is
not a crimecast copy, or a copy whose serving view is broken. Every case asserts the answer
(status and message) and that no server path or database-engine text reaches the client.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from serving_dbt import build_serving

from serving.api import create_app
from serving.publish import publish_copy

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's TestClient httpx deprecation notice
    from fastapi.testclient import TestClient

REPO = Path(__file__).resolve().parents[1]
AS_OF = date(2024, 6, 29)
RUN = "20240630T060000-cccccccc"
FORECAST = "/forecast?source=boston&area=B2&category=Larceny"
GET_ROUTES = ["/health", "/series", FORECAST, "/docs", "/redoc", "/openapi.json"]
# how DuckDB's exceptions spell themselves; none may reach a client
ENGINE_WORDS = ("IO Error", "Catalog Error", "Binder Error", "Invalid Input", "Error:", "DuckDB")


# ------------------------------------------------------------------------------- generators
def make_copy(folder: Path) -> Path:
    """A published copy of a small warehouse: one source, two series, 7 forecast days."""
    folder.mkdir(parents=True, exist_ok=True)
    live = folder / "live.duckdb"
    con = duckdb.connect(str(live))
    try:
        con.execute("create schema ml")
        con.execute(
            "create table ml.forecasts (run_id varchar, as_of_date date, source varchar, "
            "area varchar, category varchar, series_id varchar, date date, horizon bigint, "
            "model varchar, forecast double)"
        )
        for area, category in (("B2", "Larceny"), ("D4", "Robbery")):
            for h in range(1, 8):
                con.execute(
                    "insert into ml.forecasts values (?, ?, 'boston', ?, ?, ?, ?, ?, 'glm', ?)",
                    [RUN, AS_OF, area, category, f"boston|{area}|{category}"]
                    + [AS_OF + timedelta(days=h), h, 1.0 + h / 10],
                )
    finally:
        con.close()
    build_serving(live)  # the serving contract, as the pipeline builds it before publishing
    return publish_copy(live, folder / "published" / "crimecast.duckdb")


def spoofed_forwarded_for(n: int, seed: int = 17) -> list[str]:
    """``n`` distinct X-Forwarded-For values a client could invent: single addresses, chains,
    IPv6, and garbage."""
    rng = random.Random(seed)
    values = []
    for i in range(n):
        ip = ".".join(str(rng.randrange(1, 255)) for _ in range(4))
        values.append(
            [ip, f"{ip}, 10.0.0.{i}", f"2001:db8::{i:x}", f"not-an-ip-{i}", f"{ip},{ip}"][i % 5]
        )
    assert len(set(values)) == n
    return values


def garbage_copy(path: Path) -> Path:
    """Random bytes where the published copy should be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(random.Random(3).randbytes(64 * 1024))
    return path


def folder_copy(path: Path) -> Path:
    """A folder where the published copy should be."""
    path.mkdir(parents=True)
    return path


def foreign_copy(path: Path) -> Path:
    """A valid DuckDB file that is not a crimecast copy (no serving schema)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("create table t as select 1 as x")
    finally:
        con.close()
    return path


def broken_view_copy(path: Path) -> Path:
    """A copy whose serving views point at a table that is gone (a hand-edited copy)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema ml")
        con.execute("create table ml.gone (source varchar, x double)")
        con.execute("create schema serving")
        con.execute("create view serving.forecasts as select * from ml.gone")
        con.execute("create view serving.forecasts_latest as select * from ml.gone")
        con.execute("create view serving.availability as select * from ml.gone")
        con.execute("drop table ml.gone")
    finally:
        con.close()
    return path


# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_copy(tmp_path_factory.mktemp("hostile-api"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- the rate limit
def test_a_local_client_cannot_escape_the_limit_with_forwarded_for(published: Path):
    """From 127.0.0.1 (the peer uvicorn trusts by default), a new X-Forwarded-For on each
    request is still the same client."""
    client = TestClient(create_app(published, rate=0.1, burst=3), client=("127.0.0.1", 4000))
    codes = [
        client.get("/health", headers={"X-Forwarded-For": xff}).status_code
        for xff in spoofed_forwarded_for(8)
    ]
    assert codes == [200] * 3 + [429] * 5


def test_make_serve_ignores_forwarded_for_from_localhost(published: Path, tmp_path: Path):
    """The server ``make serve`` starts (``python -m serving.api``) keys on the socket
    peer: uvicorn's own proxy-header rewriting is off."""
    port = _free_port()
    env = {
        **os.environ,
        "CRIMECAST_PUBLISHED": str(published),
        "CRIMECAST_API_RATE": "0.1",
        "CRIMECAST_API_BURST": "3",
    }
    env.pop("CRIMECAST_API_TRUSTED_PROXIES", None)
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "serving.api", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def get(xff: str) -> int:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/health", headers={"X-Forwarded-For": xff}
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return response.status
            except urllib.error.HTTPError as exc:
                return exc.code

        deadline = time.monotonic() + 60
        while True:  # wait for the port (the first answered request counts as one of three)
            try:
                first = get("198.51.100.1")
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, (tmp_path / "server.log").read_text()
                assert time.monotonic() < deadline, "the API did not start in 60 s"
                time.sleep(0.3)
        codes = [first] + [get(xff) for xff in spoofed_forwarded_for(5, seed=5)]
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    assert codes == [200] * 3 + [429] * 3


def test_a_trusted_proxy_is_honoured_and_only_its_hop_is_believed(published: Path):
    app = create_app(published, rate=0.1, burst=2, trusted="10.0.0.5, 10.1.0.0/16")
    proxy = TestClient(app, client=("10.0.0.5", 4000))

    def via_proxy(xff: str) -> int:
        return proxy.get("/health", headers={"X-Forwarded-For": xff}).status_code

    # two real clients behind the proxy: each has its own budget
    assert [via_proxy("203.0.113.7") for _ in range(3)] == [200, 200, 429]
    assert via_proxy("203.0.113.8") == 200
    # the left part of the chain is the client's own invention: 203.0.113.7 is still limited
    assert via_proxy("192.0.2.1, 203.0.113.7") == 429
    # a second trusted hop (10.1.0.0/16) is skipped: the client is the hop before it
    assert via_proxy("203.0.113.7, 10.1.2.3") == 429
    assert via_proxy("203.0.113.9, 10.1.2.3") == 200
    # a peer that is not a trusted proxy is counted itself, whatever it says
    direct = TestClient(app, client=("198.51.100.4", 4000))
    codes = [
        direct.get("/health", headers={"X-Forwarded-For": xff}).status_code
        for xff in spoofed_forwarded_for(3)
    ]
    assert codes == [200, 200, 429]


def test_a_bad_trusted_proxy_setting_is_a_one_line_error(published: Path):
    with pytest.raises(ValueError, match="CRIMECAST_API_TRUSTED_PROXIES: 'proxy.local' is not"):
        create_app(published, trusted="10.0.0.5,proxy.local")


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_the_docs_are_rate_limited_and_head_counts(published: Path, path: str):
    client = TestClient(create_app(published, rate=0.1, burst=2))
    assert client.head(path).status_code == 200
    assert client.get(path).status_code == 200
    r = client.get(path)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert client.get("/health").status_code == 429  # one budget for every route


# ------------------------------------------------------------------------ HEAD, redirects
@pytest.mark.parametrize("path", GET_ROUTES)
def test_head_is_answered_like_get_without_a_body(published: Path, path: str):
    client = TestClient(create_app(published, rate=1000, burst=1000))
    get, head = client.get(path), client.head(path)
    assert get.status_code == 200 and head.status_code == 200, head.text
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert head.headers["content-length"] == get.headers["content-length"]


@pytest.mark.parametrize("path", ["/series/", "/forecast/", "/health/", "/docs/"])
def test_a_trailing_slash_is_not_redirected_to_the_host_header(published: Path, path: str):
    client = TestClient(create_app(published, rate=1000, burst=1000), follow_redirects=False)
    r = client.get(path, headers={"Host": "attacker.example"})
    assert r.status_code == 404
    assert "location" not in r.headers
    assert "attacker.example" not in r.text


# ------------------------------------------------------- no server paths, no engine text
@pytest.mark.parametrize(
    ("make", "series_status", "message"),
    [
        (lambda p: p, 503, "published copy missing: crimecast.duckdb"),
        (garbage_copy, 503, "published copy unreadable: crimecast.duckdb"),
        (folder_copy, 503, "published copy unreadable: crimecast.duckdb"),
        # the file opens: /health says what is wrong, the data routes answer 503 (broken view)
        # or an empty list (no serving schema at all)
        (broken_view_copy, 503, None),
        (foreign_copy, 200, None),
    ],
    ids=["missing", "random-bytes", "folder", "broken-view", "foreign-duckdb"],
)
def test_errors_name_the_file_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, make, series_status, message
):
    path = make(tmp_path / "srv" / "published" / "crimecast.duckdb")
    client = TestClient(create_app(path, rate=1000, burst=1000))
    series = client.get("/series")
    assert series.status_code == series_status, series.text
    bodies = {route: client.get(route) for route in ("/health", FORECAST)}
    bodies["/series"] = series
    for route, r in bodies.items():
        assert r.status_code in (200, 503), (route, r.text)
        assert str(tmp_path) not in r.text and "/srv/" not in r.text, (route, r.text)
        assert not any(word in r.text for word in ENGINE_WORDS), (route, r.text)
        assert "Traceback" not in r.text
    if message:
        assert all(message in r.json()["detail"] for r in bodies.values()), bodies
    else:
        health = bodies["/health"].json()
        assert health["status"] == "degraded" and health["database"] == "crimecast.duckdb"
        assert "no readable serving schema" in health["detail"]
        assert bodies[FORECAST].status_code == 503
        if series_status == 503:
            assert "published copy unreadable: crimecast.duckdb" in series.json()["detail"]
        else:
            assert "no forecasts" in bodies[FORECAST].json()["detail"]
    if make is not foreign_copy and message != "published copy missing: crimecast.duckdb":
        # the operator still gets the engine's reason, in the server log
        assert any(str(tmp_path) in rec.getMessage() for rec in caplog.records)


def test_a_healthy_copy_reports_its_file_name_only(published: Path):
    body = TestClient(create_app(published, rate=1000, burst=1000)).get("/health").json()
    assert body["status"] == "ok"
    assert body["database"] == "crimecast.duckdb"
    assert str(published.parent) not in str(body)
