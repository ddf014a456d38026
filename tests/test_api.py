"""The read-only forecast API (orchestration/api.py) over a published copy of a small warehouse."""

from __future__ import annotations

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

from orchestration.api import create_app
from orchestration.publish import publish_copy

with warnings.catch_warnings():
    # Starlette 1.x warns that its TestClient will move from httpx to httpx2; not our concern.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

AS_OF = date(2024, 6, 29)
OLD_RUN = "20240601T060000-aaaaaaaa"
NEW_RUN = "20240630T060000-bbbbbbbb"
SERIES = [("boston", "B2", "Larceny"), ("boston", "D4", "Robbery"), ("houston", "1A", "Theft")]


def _make_warehouse(path: Path, intervals: bool) -> Path:
    """A warehouse with ml.forecasts as the pipeline writes it: two runs, 28 days each."""
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema ml")
        extra = ", lo_80 double, hi_80 double, lo_95 double, hi_95 double" if intervals else ""
        con.execute(
            "create table ml.forecasts (run_id varchar, as_of_date date, source varchar, "
            "area varchar, category varchar, series_id varchar, date date, horizon bigint, "
            f"model varchar, forecast double{extra})"
        )
        rows = []
        for run, as_of in ((OLD_RUN, AS_OF - timedelta(days=29)), (NEW_RUN, AS_OF)):
            for k, (source, area, category) in enumerate(SERIES):
                for h in range(1, 29):
                    value = round(0.5 + k + h / 7 + (run == NEW_RUN) * 0.25, 6)
                    row = [run, as_of, source, area, category, f"{source}|{area}|{category}"]
                    row += [as_of + timedelta(days=h), h, "xgboost", value]
                    if intervals:
                        row += [value * 0.5, value * 1.5, value * 0.25, value * 2.0]
                    rows.append(row)
        marks = ", ".join("?" * len(rows[0]))
        con.executemany(f"insert into ml.forecasts values ({marks})", rows)
    finally:
        con.close()
    return path


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_warehouse(tmp_path_factory.mktemp("live") / "crimecast.duckdb", False)


@pytest.fixture(scope="module")
def published(warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
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
            "select date, horizon, model, forecast from ml.forecasts where source = 'boston' "
            "and area = 'B2' and category = 'Larceny' and run_id = ? order by date",
            [NEW_RUN],
        ).fetchall()
    finally:
        con.close()
    got = [
        (date.fromisoformat(p["date"]), p["horizon"], p["model"], p["forecast"])
        for p in body["points"]
    ]
    assert got == expected
    assert all(p[k] is None for p in body["points"] for k in ("lo_80", "hi_80", "lo_95", "hi_95"))


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
    pub = publish_copy(live, tmp_path / "pub" / "crimecast.duckdb")
    client = TestClient(create_app(pub, rate=1000, burst=1000))
    body = client.get(
        "/forecast", params={"source": "houston", "area": "1A", "category": "Theft"}
    ).json()
    assert body["intervals"] is True
    p = body["points"][0]
    assert p["lo_95"] < p["lo_80"] < p["forecast"] < p["hi_80"] < p["hi_95"]
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
