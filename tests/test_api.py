"""The read-only forecast API (serving/api.py) over a published copy of a small warehouse."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from serving_dbt import build_serving

from ml.hierarchy import aggregate
from serving.api import create_app
from serving.publish import publish_copy

with warnings.catch_warnings():
    # Starlette 1.x warns that its TestClient will move from httpx to httpx2; not our concern.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

AS_OF = date(2024, 6, 29)
OLD_RUN = "20240601T060000-aaaaaaaa"
NEW_RUN = "20240630T060000-bbbbbbbb"
SERIES = [("boston", "B2", "Larceny"), ("boston", "D4", "Robbery"), ("houston", "1A", "Theft")]


EXTRA = ("boston", "Z9", "Arson")  # recorded but not forecast: never in a total's history
BOUNDS = ("forecast_lo_80", "forecast_hi_80", "forecast_lo_95", "forecast_hi_95")


def _make_warehouse(path: Path, intervals: bool) -> Path:
    """A warehouse as the pipeline writes it: ml.forecasts (two runs, 28 days each, the
    warehouse's column names), ml.forecasts_hierarchy summed by the pipeline's own
    ``ml.hierarchy.aggregate``, and 60 days of marts.daily_counts up to the as-of date."""
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema ml")
        con.execute("create schema marts")
        extra = "".join(f", {b} double" for b in BOUNDS) if intervals else ""
        con.execute(
            "create table ml.forecasts (run_id varchar, as_of_date date, source varchar, "
            "area varchar, category varchar, series_id varchar, date date, horizon bigint, "
            f"model varchar, forecast double, forecast_mean double{extra})"
        )
        rows = []
        for run, as_of in ((OLD_RUN, AS_OF - timedelta(days=29)), (NEW_RUN, AS_OF)):
            for k, (source, area, category) in enumerate(SERIES):
                for h in range(1, 29):
                    value = 0.5 + k + h / 7 + (run == NEW_RUN) * 0.25  # float noise on purpose
                    row = [run, as_of, source, area, category, f"{source}|{area}|{category}"]
                    row += [as_of + timedelta(days=h), h, "xgboost", float(round(value)), value]
                    if intervals:
                        row += [value * 0.5, value * 1.5, value * 0.25, value * 2.0]
                    rows.append(row)
        marks = ", ".join("?" * len(rows[0]))
        con.executemany(f"insert into ml.forecasts values ({marks})", rows)
        bottom = con.execute(
            "select run_id, as_of_date, series_id, date, horizon, forecast_mean from ml.forecasts"
        ).df()
        hier = aggregate(bottom, ["run_id", "as_of_date", "date", "horizon"], ["forecast_mean"])
        hier = hier.rename(columns={"forecast_mean": "forecast"})
        for b, factor in zip(BOUNDS, (0.5, 1.5, 0.25, 2.0), strict=True):
            hier[b] = hier["forecast"] * factor
        con.execute("create table ml.forecasts_hierarchy as select * from hier")
        counts = [
            [s, a, c, f"{s}|{a}|{c}", AS_OF - timedelta(days=d), float((d * (k + 1)) % 5)]
            for k, (s, a, c) in enumerate([*SERIES, EXTRA])
            for d in range(60)
        ]
        con.execute(
            "create table marts.daily_counts (source varchar, area varchar, category varchar, "
            "series_id varchar, date date, incident_count double)"
        )
        con.executemany("insert into marts.daily_counts values (?, ?, ?, ?, ?, ?)", counts)
    finally:
        con.close()
    return path


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_warehouse(tmp_path_factory.mktemp("live") / "crimecast.duckdb", False)


@pytest.fixture(scope="module")
def published(warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    build_serving(warehouse)  # the serving contract, as the pipeline builds it before publishing
    return publish_copy(warehouse, tmp_path_factory.mktemp("published") / "crimecast.duckdb")


@pytest.fixture
def client(published: Path) -> TestClient:
    return TestClient(create_app(published, rate=1000, burst=1000))


def test_health_reports_the_published_copy(client: TestClient, published: Path):
    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["database"] == published.name  # the file name, never the server's path
    assert body["tables"]["forecasts"] is True
    assert body["tables"]["anomalies"] is False  # not produced: said so, not an error


def test_series_says_what_can_be_asked(client: TestClient):
    body = client.get("/series").json()
    by_source = {s["source"]: s for s in body["sources"]}
    assert set(by_source) == {"boston", "houston"}
    assert by_source["boston"]["latest_run"] == NEW_RUN
    assert by_source["boston"]["runs"] == [NEW_RUN, OLD_RUN]
    assert by_source["boston"]["series"] == 2
    assert by_source["boston"]["models"] == ["xgboost"]
    assert by_source["boston"]["intervals"] is False
    assert body["total_series"] == 3
    assert {(s["source"], s["area"], s["category"]) for s in body["series"]} == set(SERIES)
    one = client.get("/series", params={"source": "houston", "limit": 1}).json()
    assert [s["source"] for s in one["sources"]] == ["houston"]
    assert one["total_series"] == 1 and len(one["series"]) == 1


def test_forecast_rows_are_the_warehouse_rows(client: TestClient, warehouse: Path):
    r = client.get("/forecast", params={"source": "boston", "area": "B2", "category": "Larceny"})
    assert r.status_code == 200
    body = r.json()
    assert body["run_id"] == NEW_RUN  # latest run by default
    assert body["model"] == "xgboost"
    assert body["series_id"] == "boston|B2|Larceny"
    assert body["as_of_date"] == AS_OF.isoformat()
    assert body["intervals"] is False
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        expected = con.execute(
            "select date, horizon, model, forecast, round(forecast_mean, 3) from ml.forecasts "
            "where source = 'boston' and area = 'B2' and category = 'Larceny' and run_id = ? "
            "order by date",
            [NEW_RUN],
        ).fetchall()
    finally:
        con.close()
    got = [
        (date.fromisoformat(p["date"]), p["horizon"], p["model"], p["forecast"], p["forecast_mean"])
        for p in body["points"]
    ]
    assert got == expected
    assert all(p[k] is None for p in body["points"] for k in BOUNDS)


def test_forecast_date_range_and_an_older_run(client: TestClient):
    params = {"source": "boston", "area": "D4", "category": "Robbery"}
    start, end = AS_OF + timedelta(days=3), AS_OF + timedelta(days=9)
    body = client.get(
        "/forecast", params={**params, "start": start.isoformat(), "end": end.isoformat()}
    ).json()
    assert [p["date"] for p in body["points"]] == [
        (start + timedelta(days=i)).isoformat() for i in range(7)
    ]
    old = client.get("/forecast", params={**params, "run_id": OLD_RUN}).json()
    assert old["run_id"] == OLD_RUN
    assert old["as_of_date"] == (AS_OF - timedelta(days=29)).isoformat()
    assert len(old["points"]) == 28


def test_intervals_are_returned_when_the_warehouse_has_them(tmp_path: Path):
    live = _make_warehouse(tmp_path / "live.duckdb", True)
    build_serving(live)
    pub = publish_copy(live, tmp_path / "pub" / "crimecast.duckdb")
    client = TestClient(create_app(pub, rate=1000, burst=1000))
    body = client.get(
        "/forecast", params={"source": "houston", "area": "1A", "category": "Theft"}
    ).json()
    assert body["intervals"] is True
    p = body["points"][0]
    assert p["forecast_lo_95"] < p["forecast_lo_80"] < p["forecast_mean"] < p["forecast_hi_80"]
    assert p["forecast_hi_80"] < p["forecast_hi_95"]
    # the pre-1.1 names stay one version, marked deprecated in the schema
    assert [p[b.removeprefix("forecast_")] for b in BOUNDS] == [p[b] for b in BOUNDS]
    point = client.get("/openapi.json").json()["components"]["schemas"]["ForecastPoint"]
    assert point["properties"]["lo_80"]["deprecated"] is True
    assert "deprecated" not in point["properties"]["forecast_lo_80"]
    decimals = [str(p[b]).partition(".")[2] for p in body["points"] for b in BOUNDS]
    assert max(len(d) for d in decimals) == 3  # rounded, and the noise is really there
    assert client.get("/series").json()["sources"][0]["intervals"] is True


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"source": "boston", "area": "B2"}, "category"),  # missing parameter
        ({"source": "boston", "area": "B2", "category": "Larceny", "start": "2024-13-01"}, "date"),
        (
            {
                "source": "boston",
                "area": "B2",
                "category": "Larceny",
                "start": "2024-07-10",
                "end": "2024-07-01",
            },
            "after end",
        ),
        ({"source": "paris", "area": "B2", "category": "Larceny"}, "unknown source"),
        ({"source": "boston", "area": "ZZ", "category": "Larceny"}, "no series"),
        ({"source": "boston", "area": "B2", "category": "Larceny", "run_id": "x"}, "run"),
        ({"source": "boston", "area": "B2", "category": "Larceny", "model": "prophet"}, "model"),
        ({"source": "bos\x01ton", "area": "B2", "category": "Larceny"}, "pattern"),
        ({"source": "boston' or '1'='1", "area": "B2", "category": "Larceny"}, "unknown source"),
    ],
)
def test_bad_parameters_are_422_with_a_clear_message(client: TestClient, params, message):
    r = client.get("/forecast", params=params)
    assert r.status_code == 422, r.text
    assert message in r.text


def test_unknown_source_in_series_is_422(client: TestClient):
    r = client.get("/series", params={"source": "paris"})
    assert r.status_code == 422 and "unknown source" in r.text


def test_rate_limit_answers_429_with_retry_after(published: Path):
    client = TestClient(create_app(published, rate=0.5, burst=3))
    codes = [client.get("/health").status_code for _ in range(5)]
    assert codes[:3] == [200, 200, 200]
    assert codes[3:] == [429, 429]
    r = client.get("/series")
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert "rate limit" in r.json()["detail"]
    for path in ("/openapi.json", "/docs", "/redoc"):  # the docs share the client's budget
        assert client.get(path).status_code == 429, path


def test_rate_limit_is_per_client_and_refills(published: Path):
    app = create_app(published, rate=2, burst=2)  # 2 requests per 1 s window
    a = TestClient(app, client=("10.0.0.1", 1000))
    b = TestClient(app, client=("10.0.0.2", 1000))
    assert [a.get("/health").status_code for _ in range(3)] == [200, 200, 429]
    assert b.get("/health").status_code == 200  # another client has its own budget
    wait = int(a.get("/health").headers["Retry-After"])
    assert 1 <= wait <= 1
    time.sleep(1.05)
    assert a.get("/health").status_code == 200  # the window moved on


def test_no_published_copy_is_503(tmp_path: Path):
    client = TestClient(create_app(tmp_path / "missing.duckdb"))
    r = client.get("/health")
    assert r.status_code == 503
    assert "make dashboards" in r.json()["detail"]
    assert "missing.duckdb" in r.json()["detail"] and str(tmp_path) not in r.text


def test_openapi_docs_are_served(client: TestClient):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/health", "/series", "/forecast"} <= set(paths)


# ------------------------------------------------- property-based: the API against its schema
# schemathesis' pytest loader (`from_fixture`) does not work with pytest 9 (it writes a private
# `_nodeid`), so the test drives its Hypothesis strategies directly, per operation.
def test_api_never_answers_500_and_matches_its_schema(published: Path):
    app = create_app(published, rate=1e6, burst=1_000_000)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} == {"/health", "/series", "/forecast"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=30,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])

        check()


# --------------------------------------------------------- totals, history, dates, CSV, docs
B2 = {"source": "boston", "area": "B2", "category": "Larceny"}


def _means(body: dict) -> dict[str, float]:
    return {p["date"]: p["forecast_mean"] for p in body["points"]}


def test_totals_add_up_to_the_sum_of_the_bottom_level(client: TestClient):
    boston = [s for s in SERIES if s[0] == "boston"]
    keys = ("source", "area", "category")
    bottom = [
        _means(client.get("/forecast", params=dict(zip(keys, s, strict=True))).json())
        for s in boston
    ]
    city = client.get("/forecast", params={"source": "boston", "level": "city"})
    assert city.status_code == 200, city.text
    body = city.json()
    assert (body["level"], body["area"], body["category"]) == ("city", "*", "*")
    assert body["series_id"] == "boston|*|*" and body["run_id"] == NEW_RUN
    assert body["model"] is None and len(body["points"]) == 28
    for day, total in _means(body).items():
        # each value is rounded to 3 decimals on its own
        assert total == pytest.approx(sum(b[day] for b in bottom), abs=1e-3 * len(bottom))
    areas = [
        _means(
            client.get("/forecast", params={"source": "boston", "level": "area", "area": a}).json()
        )
        for a in ("B2", "D4")
    ]
    assert areas == bottom  # one category per area here: an area total is its one series
    larceny = client.get(
        "/forecast", params={"source": "boston", "level": "category", "category": "Larceny"}
    ).json()
    assert _means(larceny) == bottom[0]
    assert client.get("/series").json()["sources"][0]["levels"] == [
        "area_category",
        "area",
        "category",
        "city",
    ]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"source": "boston", "level": "city", "area": "B2"}, "area is summed out"),
        ({"source": "boston", "level": "area"}, "area is required"),
        ({"source": "boston", "level": "area", "area": "ZZ"}, "no area total"),
        ({"source": "boston", "level": "city", "model": "xgboost"}, "model applies"),
        ({"source": "boston", "level": "county"}, "level"),
    ],
)
def test_bad_totals_are_422(client: TestClient, params, message):
    r = client.get("/forecast", params=params)
    assert r.status_code == 422 and message in r.text, r.text


def test_recorded_history_beside_the_forecasts(client: TestClient, warehouse: Path):
    body = client.get("/forecast", params={**B2, "history_days": 7}).json()
    days = [AS_OF - timedelta(days=d) for d in range(6, -1, -1)]
    assert [h["date"] for h in body["history"]] == [d.isoformat() for d in days]
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        recorded = dict(
            con.execute(
                "select date, incident_count from marts.daily_counts where series_id = ?",
                ["boston|B2|Larceny"],
            ).fetchall()
        )
        boston = dict(
            con.execute(
                "select date, sum(incident_count) from marts.daily_counts "
                "where source = 'boston' and area <> 'Z9' group by date"
            ).fetchall()
        )
    finally:
        con.close()
    assert [h["incident_count"] for h in body["history"]] == [recorded[d] for d in days]
    city = client.get(
        "/forecast", params={"source": "boston", "level": "city", "history_days": 7}
    ).json()
    # a total's history sums the run's forecast series only (Z9 is recorded, not forecast)
    assert [h["incident_count"] for h in city["history"]] == [boston[d] for d in days]
    assert client.get("/forecast", params=B2).json()["history"] == []


def test_days_and_dates_past_the_horizon(client: TestClient):
    start = AS_OF + timedelta(days=5)
    body = client.get("/forecast", params={**B2, "start": start.isoformat(), "days": 7}).json()
    assert [p["date"] for p in body["points"]] == [
        (start + timedelta(days=i)).isoformat() for i in range(7)
    ]
    first_week = client.get("/forecast", params={**B2, "days": 7}).json()
    assert [p["horizon"] for p in first_week["points"]] == list(range(1, 8))
    last = AS_OF + timedelta(days=28)
    assert (
        len(client.get("/forecast", params={**B2, "start": last.isoformat()}).json()["points"]) == 1
    )
    past = client.get("/forecast", params={**B2, "start": (last + timedelta(days=1)).isoformat()})
    assert past.status_code == 422
    assert f"past the forecast horizon: run '{NEW_RUN}' (as of {AS_OF})" in past.text
    assert f"to {last}" in past.text
    before = client.get("/forecast", params={**B2, "end": AS_OF.isoformat()})
    assert before.status_code == 422 and "history_days" in before.text
    both = client.get("/forecast", params={**B2, "end": last.isoformat(), "days": 3})
    assert both.status_code == 422 and "end or days" in both.text


def test_csv_by_parameter_or_accept_header(client: TestClient):
    js = client.get("/forecast", params={**B2, "history_days": 3}).json()
    by_param = client.get("/forecast", params={**B2, "history_days": 3, "format": "csv"})
    by_accept = client.get(
        "/forecast", params={**B2, "history_days": 3}, headers={"Accept": "text/csv"}
    )
    for r in (by_param, by_accept):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/csv")
        assert 'filename="crimecast_boston_B2_Larceny_' in r.headers["content-disposition"]
    assert by_param.text == by_accept.text
    rows = list(csv.DictReader(io.StringIO(by_param.text)))
    recorded = [r for r in rows if r["kind"] == "recorded"]
    forecast = [r for r in rows if r["kind"] == "forecast"]
    assert [(r["date"], float(r["incident_count"])) for r in recorded] == [
        (h["date"], h["incident_count"]) for h in js["history"]
    ]
    assert [(r["date"], int(r["horizon"]), float(r["forecast_mean"])) for r in forecast] == [
        (p["date"], p["horizon"], p["forecast_mean"]) for p in js["points"]
    ]
    assert all(r["forecast_lo_80"] == "" for r in forecast)  # no intervals in this run: empty
    assert {r["run_id"] for r in rows} == {NEW_RUN}
    # JSON stays the default, and wins when the client prefers it
    prefers_json = client.get(
        "/forecast", params=B2, headers={"Accept": "application/json, text/csv"}
    )
    assert prefers_json.headers["content-type"] == "application/json"


def test_the_schema_has_examples(client: TestClient):
    schema = client.get("/openapi.json").json()
    params = {p["name"]: p for p in schema["paths"]["/forecast"]["get"]["parameters"]}
    assert params["source"]["examples"] == {"boston": {"value": "boston"}}
    assert params["days"]["examples"] == {"7": {"value": 7}}
    assert "text/csv" in schema["paths"]["/forecast"]["get"]["responses"]["200"]["content"]
    assert schema["components"]["schemas"]["ForecastResponse"]["examples"]


ASSET_URL = re.compile(r"""(?:src|href)=["']([^"']+)["']|url:\s*'([^']+)'""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_load_only_local_assets(client: TestClient, page: str):
    html = client.get(page).text
    urls = [a or b for a, b in ASSET_URL.findall(html)]
    assert urls, html
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        assert client.get(url).status_code == 200, url
    assert "http://" not in html and "https://" not in html


def _chromium_dom(url: str) -> str:
    """The DOM of ``url`` after its scripts ran, in headless Chromium with every host but
    127.0.0.1 unresolvable (no CDN, no font service)."""
    browser = next(
        (
            shutil.which(n)
            for n in ("chromium", "chromium-browser", "google-chrome")
            if shutil.which(n)
        ),
        None,
    )
    assert browser, "Chromium is needed: apt-get install -y --no-install-recommends chromium"
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        done = subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=15000",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_the_docs_render_offline_in_chromium(published: Path, tmp_path: Path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "CRIMECAST_PUBLISHED": str(published)}
    with (tmp_path / "server.log").open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "serving.api", "--port", str(port)],
            cwd=Path(__file__).resolve().parents[1],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    assert server.poll() is None, (tmp_path / "server.log").read_text()
                    assert time.monotonic() < deadline, "the API did not start in 60 s"
                    time.sleep(0.3)
            swagger = _chromium_dom(f"http://127.0.0.1:{port}/docs")
            redoc = _chromium_dom(f"http://127.0.0.1:{port}/redoc")
        finally:
            server.terminate()
            server.wait(timeout=30)
    # Swagger UI built its operation blocks from /openapi.json: its script ran
    assert 'class="opblock opblock-get' in swagger, swagger[-2000:]
    assert "Daily forecasts of one series or of a total" in swagger
    # ReDoc rendered the same operations
    assert "Daily forecasts of one series or of a total" in redoc, redoc[-2000:]
    assert "crimecast forecast API" in redoc
