"""Read-only forecast API over the published copy of the warehouse (FastAPI).

Endpoints: ``GET /health``, ``GET /series`` (what can be asked), ``GET /forecast`` (one
series' forecasts of one run, the latest by default, or a coherent total with
``level=area|category|city``; ``days=``, ``history_days=`` recorded counts, CSV with
``format=csv`` or ``Accept: text/csv``; values rounded to 3 decimals). Docs at ``/docs``
(Swagger UI) and ``/redoc``, both served from local assets (the ``fastapi-offline`` wheel's
files) so they work offline.

* It reads the PUBLISHED copy (the ``published/warehouse`` asset; default
  ``<warehouse dir>/published/crimecast.duckdb``, or ``CRIMECAST_PUBLISHED``), never the live
  warehouse, through a short-lived READ_ONLY connection per request: the pipeline is never
  blocked and a re-publication (atomic rename) is picked up by the next request.
* Every query is parameterized; user input never becomes SQL text.
* Bad parameters (malformed, or naming a source / series / run that does not exist) → 422 with
  a message saying what is wrong and where to look (``/series``).
* Rate limit (slowapi, a moving window per client: ``CRIMECAST_API_BURST`` requests per
  ``CRIMECAST_API_BURST / CRIMECAST_API_RATE`` seconds; defaults 30 per 6 s, i.e. 5/s on average)
  on every route, the docs and ``/openapi.json`` included; 429 with ``Retry-After`` when spent.
  The client is the socket peer. Only when that peer is listed in
  ``CRIMECAST_API_TRUSTED_PROXIES`` (comma-separated IPs or networks) is ``X-Forwarded-For``
  read, and then its right-most address that is not a trusted proxy is the client.
* Responses never carry server paths or database-engine text: a missing or unreadable copy is
  a 503 naming the file name only (the detail goes to the server log).
* ``HEAD`` is answered on every ``GET`` route; no redirects (``/series/`` is a 404, never a
  redirect to a URL built from the ``Host`` header).

Run: ``.venv/bin/python -m serving.api [--host 127.0.0.1] [--port 8000]`` (``make serve``).
It starts uvicorn with ``proxy_headers=False``: uvicorn's own proxy-header handling would replace
the socket peer by any ``X-Forwarded-For`` a local client sends. Running ``uvicorn
serving.api:app`` yourself, pass ``--no-proxy-headers``.
"""

from __future__ import annotations

import argparse
import csv
import io
import ipaddress
import logging
import math
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import duckdb
import fastapi_offline
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from slowapi import Limiter
from slowapi.errors import RateLimitExceeded
from slowapi.middleware import SlowAPIMiddleware
from starlette import types as asgi

from orchestration.config import settings
from serving.publish import DEFAULT_TARGET

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Swagger UI and ReDoc as shipped by the fastapi-offline wheel (their licences: its METADATA)
DOCS_STATIC = Path(fastapi_offline.__file__).parent / "static"
DOCS_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
log = logging.getLogger("crimecast.api")
# printable text only: no control characters, bounded length
TEXT = r"^[^\x00-\x1f\x7f]*$"
MAX_POINTS = 10_000
INTERVALS = ("lo_80", "hi_80", "lo_95", "hi_95")


def published_path() -> Path:
    """The run's published copy (``CRIMECAST_PUBLISHED``, default
    ``<warehouse dir>/published/crimecast.duckdb``); the dashboards' copy when only
    ``make dashboards`` has published."""
    path = settings().published
    if not path.exists() and DEFAULT_TARGET.exists() and not os.environ.get("CRIMECAST_PUBLISHED"):
        return DEFAULT_TARGET
    return path


# ---------------------------------------------------------------------------- rate limiting
def trusted_proxies(spec: str | None) -> tuple[IPNetwork, ...]:
    """Parse ``CRIMECAST_API_TRUSTED_PROXIES``: comma-separated IP addresses or networks."""
    networks = []
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(
                f"CRIMECAST_API_TRUSTED_PROXIES: {item!r} is not an IP address or network"
            ) from None
    return tuple(networks)


def _is_trusted(host: str, trusted: tuple[IPNetwork, ...]) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(address in network for network in trusted)


def client_key(request: Request, trusted: tuple[IPNetwork, ...] = ()) -> str:
    """Who the rate limit counts: the socket peer, unless that peer is a trusted proxy; then
    the right-most ``X-Forwarded-For`` hop that is not a trusted proxy (the left part of the
    header is whatever the client chose to send, so it is never believed)."""
    peer = request.client.host if request.client and request.client.host else "unknown"
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    hops = [
        hop.strip()
        for value in request.headers.getlist("x-forwarded-for")
        for hop in value.split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a proxy that writes garbage: count the proxy itself
    return hops[0] if hops else peer  # every hop trusted: the first one is the client


def _limit_string(rate: float, burst: int) -> str:
    """The token bucket's knobs as a moving window: ``burst`` requests per
    ``burst / rate`` seconds (rounded up), the same burst and long-run rate."""
    if rate <= 0 or burst < 1:
        raise ValueError("CRIMECAST_API_RATE must be > 0 and CRIMECAST_API_BURST >= 1")
    return f"{burst} per {max(1, math.ceil(burst / rate))} second"


def _rate_limited(request: Request, exc: RateLimitExceeded) -> JSONResponse:
    limiter: Limiter = request.app.state.limiter
    wait = 1
    hit = getattr(request.state, "view_rate_limit", None)
    if hit is not None:
        reset = limiter.limiter.get_window_stats(hit[0], *hit[1]).reset_time
        wait = max(1, math.ceil(reset - time.time()))
    return JSONResponse(
        status_code=429,
        content={"detail": f"rate limit exceeded ({exc.detail} per client): retry in {wait} s"},
        headers={"Retry-After": str(wait)},
    )


class HeadAsGet:
    """Answer ``HEAD`` like ``GET`` without the body (RFC 9110), on every route: FastAPI
    routes declare GET only. Placed outermost, so the rate limit counts HEAD requests too."""

    def __init__(self, app: asgi.ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: asgi.Scope, receive: asgi.Receive, send: asgi.Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: asgi.Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)


# ------------------------------------------------------------------------------- responses
LEVELS = ("area_category", "area", "category", "city")
Level = Literal["area_category", "area", "category", "city"]
ALL = "*"  # the summed-out key of an aggregate level (ml.hierarchy)
DECIMALS = 3
BOUNDS = ("forecast_lo_80", "forecast_hi_80", "forecast_lo_95", "forecast_hi_95")
RENAMED = "renamed {new} (the warehouse's name); this copy of it goes in API 2.0"


class SourceInfo(BaseModel):
    source: str
    latest_run: str = Field(description="run_id of the latest forecast run (the default)")
    as_of_date: date | None = Field(description="last full day of data of that run")
    first_date: date | None
    last_date: date | None
    series: int = Field(description="number of (area, category) series in that run")
    models: list[str]
    intervals: bool = Field(description="whether that run has interval bounds")
    levels: list[str] = Field(
        description="levels /forecast answers for that run: area_category, and the totals "
        "area, category, city when the run published its coherent hierarchy"
    )
    runs: list[str] = Field(description="every run_id available, latest first")


class SeriesInfo(BaseModel):
    source: str
    area: str
    category: str
    series_id: str


class SeriesResponse(BaseModel):
    sources: list[SourceInfo]
    series: list[SeriesInfo] = Field(description="series of the latest run of each source")
    total_series: int
    limit: int
    offset: int


class ForecastPoint(BaseModel):
    date: date
    horizon: int | None
    model: str | None = Field(description="the model of the row; null for a total (bottom-up)")
    forecast: float | None = Field(
        description="the point forecast: the Poisson median of a series, the expected count of "
        "a total (totals are sums of expected counts)"
    )
    forecast_mean: float | None = Field(None, description="the expected count")
    forecast_lo_80: float | None = None
    forecast_hi_80: float | None = None
    forecast_lo_95: float | None = None
    forecast_hi_95: float | None = None
    lo_80: float | None = Field(None, deprecated=RENAMED.format(new="forecast_lo_80"))
    hi_80: float | None = Field(None, deprecated=RENAMED.format(new="forecast_hi_80"))
    lo_95: float | None = Field(None, deprecated=RENAMED.format(new="forecast_lo_95"))
    hi_95: float | None = Field(None, deprecated=RENAMED.format(new="forecast_hi_95"))


class RecordedDay(BaseModel):
    date: date
    incident_count: float = Field(description="recorded incidents that day (marts.daily_counts)")


class ForecastResponse(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "source": "boston",
                    "level": "area_category",
                    "area": "B2",
                    "category": "Larceny",
                    "series_id": "boston|B2|Larceny",
                    "run_id": "20240630T060000-bbbbbbbb",
                    "as_of_date": "2024-06-29",
                    "model": "xgboost",
                    "intervals": True,
                    "points": [
                        {
                            "date": "2024-06-30",
                            "horizon": 1,
                            "model": "xgboost",
                            "forecast": 3.0,
                            "forecast_mean": 3.214,
                            "forecast_lo_80": 1.0,
                            "forecast_hi_80": 5.0,
                            "forecast_lo_95": 0.0,
                            "forecast_hi_95": 7.0,
                        }
                    ],
                    "history": [{"date": "2024-06-29", "incident_count": 4.0}],
                }
            ]
        }
    }
    source: str
    level: str = Field(description="area_category (one series) or a total: area, category, city")
    area: str = Field(description="'*' when summed out (category and city totals)")
    category: str = Field(description="'*' when summed out (area and city totals)")
    series_id: str
    run_id: str
    as_of_date: date | None
    model: str | None = Field(description="the model, when one model made every point")
    intervals: bool = Field(description="whether any point has interval bounds")
    points: list[ForecastPoint]
    history: list[RecordedDay] = Field(
        default_factory=list,
        description="recorded daily counts up to as_of_date (history_days=), summed like the "
        "forecasts for a total",
    )


class Health(BaseModel):
    status: str
    database: str = Field(description="file name of the published copy (never its path)")
    published_at: str | None
    tables: dict[str, bool]
    detail: str | None = Field(None, description="what is wrong when the status is degraded")


# ---------------------------------------------------------------------------------- helpers
def _clean(value: Any) -> Any:
    """JSON-safe and free of float noise: non-finite → null, floats to 3 decimals."""
    if isinstance(value, float):
        return round(value, DECIMALS) if math.isfinite(value) else None
    return value


def _example(value: Any) -> dict[str, Any]:
    """A parameter example as Swagger UI shows it (``openapi_examples``)."""
    return {str(value): {"value": value}}


def _bad(message: str, field: str, value: Any = None) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors (the documented schema)."""
    error = {"loc": ["query", field], "msg": message, "type": "value_error", "input": value}
    return HTTPException(status_code=422, detail=[error])


def _wants_csv(fmt: str | None, accept: str | None) -> bool:
    if fmt is not None:
        return fmt == "csv"
    types = [part.split(";")[0].strip().lower() for part in (accept or "").split(",")]
    return "text/csv" in types and types.index("text/csv") < (
        types.index("application/json") if "application/json" in types else len(types)
    )


CSV_COLUMNS = (
    "source", "level", "area", "category", "series_id", "run_id", "as_of_date", "kind", "date",
    "horizon", "model", "forecast", "forecast_mean", *BOUNDS, "incident_count",
)  # fmt: skip


def _csv(body: ForecastResponse) -> Response:
    """One row per forecast day (kind=forecast) and per recorded day (kind=recorded)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    head = [body.source, body.level, body.area, body.category, body.series_id, body.run_id]
    head.append(body.as_of_date)
    for day in body.history:
        writer.writerow([*head, "recorded", day.date, *[""] * 8, day.incident_count])
    for p in body.points:
        values = [p.forecast, p.forecast_mean, *(getattr(p, b) for b in BOUNDS)]
        row = [*head, "forecast", p.date, p.horizon, p.model, *values, None]
        writer.writerow(["" if v is None else v for v in row])
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{body.series_id}_{body.run_id}")[:120]
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="crimecast_{name}.csv"'},
    )


class Message(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    429: {"model": Message, "description": "Rate limit exceeded (see the Retry-After header)"},
    503: {"model": Message, "description": "No readable published warehouse"},
}


def create_app(
    database: Path | str | None = None,
    rate: float | None = None,
    burst: int | None = None,
    trusted: str | None = None,
) -> FastAPI:
    """The app. ``database`` defaults to the published copy (read at each request, so it may be
    published after start-up); ``rate``/``burst`` to CRIMECAST_API_RATE/BURST or 5/s and 30;
    ``trusted`` (proxies) to CRIMECAST_API_TRUSTED_PROXIES or none."""
    rate = rate if rate is not None else float(os.environ.get("CRIMECAST_API_RATE", "5"))
    burst = burst if burst is not None else int(os.environ.get("CRIMECAST_API_BURST", "30"))
    proxies = trusted_proxies(
        trusted if trusted is not None else os.environ.get("CRIMECAST_API_TRUSTED_PROXIES")
    )
    limiter = Limiter(
        key_func=lambda request: client_key(request, proxies),
        # one budget per client over every route ("global" scope), not one per path
        application_limits=[_limit_string(rate, burst)],
        strategy="moving-window",
        storage_uri="memory://",
    )

    app = FastAPI(
        title="crimecast forecast API",
        version="1.1.0",
        description="Read-only daily recorded-crime forecasts from the crimecast warehouse "
        "(published copy). Recorded crime is not crime; forecasts are expected counts with "
        "uncertainty; not for individual-level decisions or unreviewed patrol allocation.",
        # Starlette's slash redirect builds its Location from the Host header
        redirect_slashes=False,
        # the docs pages below load Swagger UI and ReDoc from this server, not from a CDN
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.limiter = limiter
    app.add_exception_handler(RateLimitExceeded, _rate_limited)
    app.add_middleware(SlowAPIMiddleware)
    app.add_middleware(HeadAsGet)  # outermost: the limiter sees HEAD as the GET it is

    # ------------------------------------------------------------ docs, offline
    # Plain routes rather than a StaticFiles mount: slowapi counts only routes with an endpoint.
    @app.get("/docs-assets/{name}", include_in_schema=False)
    def docs_asset(name: str) -> FileResponse:
        if name not in DOCS_ASSETS:
            raise HTTPException(404, f"no docs asset {name!r}")
        return FileResponse(DOCS_STATIC / name, media_type=DOCS_ASSETS[name])

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}/docs-assets/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs-assets/swagger-ui.css",
            swagger_favicon_url=f"{root}/docs-assets/favicon.png",
            # no call to the public validator service (swagger.io) from the page
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}/docs-assets/redoc.standalone.js",
            redoc_favicon_url=f"{root}/docs-assets/favicon.png",
            with_google_fonts=False,
        )

    def db_path() -> Path:
        return Path(database) if database is not None else published_path()

    def unreadable(exc: Exception) -> HTTPException:
        # the engine's text names server paths: it goes to the log, not to the client
        log.warning("published copy %s unreadable: %s", db_path(), exc)
        return HTTPException(
            status_code=503,
            detail=f"published copy unreadable: {db_path().name} (being replaced, or not a "
            "crimecast copy: retry, or publish again with `make dashboards`)",
        )

    @app.exception_handler(duckdb.Error)
    async def engine_error(_request: Request, exc: duckdb.Error) -> JSONResponse:
        error = unreadable(exc)
        return JSONResponse(status_code=error.status_code, content={"detail": error.detail})

    @contextmanager
    def connect() -> Iterator[duckdb.DuckDBPyConnection]:
        path = db_path()
        if not path.exists():
            raise HTTPException(
                status_code=503,
                detail=f"published copy missing: {path.name} (run `make dashboards` or "
                "`python -m serving.publish` first)",
            )
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as exc:
            raise unreadable(exc) from exc
        try:
            yield con
        finally:
            con.close()

    def has_view(con: duckdb.DuckDBPyConnection, name: str) -> bool:
        row = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'serving' and table_name = ?",
            [name],
        ).fetchone()
        return bool(row and row[0])

    @app.get(
        "/health",
        response_model=Health,
        responses=ERRORS,
        summary="Is the published warehouse readable?",
    )
    def health() -> Health:
        with connect() as con:
            tables: dict[str, bool] = {}
            published_at = None
            detail = None
            try:
                tables = dict(
                    con.execute("select name, present from serving.availability").fetchall()
                )
                row = con.execute("select published_at from serving.published").fetchone()
                published_at = str(row[0]) if row else None
            except duckdb.Error as exc:  # a copy made by hand, or not a crimecast copy
                log.warning("published copy %s: no readable serving schema: %s", db_path(), exc)
                detail = (
                    "the published copy has no readable serving schema: publish it again "
                    "(`make dashboards`)"
                )
            if detail is None and not tables.get("forecasts"):
                detail = "the published copy has no forecasts yet: run the pipeline"
            return Health(
                status="degraded" if detail else "ok",
                database=db_path().name,
                published_at=published_at,
                tables=tables,
                detail=detail,
            )

    @app.get(
        "/series",
        response_model=SeriesResponse,
        responses=ERRORS,
        summary="What can be asked: sources, their runs, and the series of the latest run",
    )
    def series(
        source: Annotated[
            str | None,
            Query(max_length=100, pattern=TEXT, description="only this source (e.g. boston)"),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> SeriesResponse:
        with connect() as con:
            if not has_view(con, "forecasts_latest"):
                return SeriesResponse(
                    sources=[], series=[], total_series=0, limit=limit, offset=offset
                )
            known = [
                r[0]
                for r in con.execute(
                    "select distinct source from serving.forecasts_latest order by 1"
                ).fetchall()
            ]
            if source is not None and source not in known:
                raise _bad(f"unknown source {source!r}; known sources: {known}", "source", source)
            wanted = [source] if source is not None else known
            infos = []
            for s in wanted:
                # the latest run is serving.forecasts_latest's (the rule lives in dbt); the
                # other runs of the copy are listed newest first
                row = con.execute(
                    "select any_value(run_id), max(as_of_date), min(date), max(date), "
                    "count(distinct series_id), list(distinct model order by model), "
                    "count(lo_80) + count(hi_80) + count(lo_95) + count(hi_95) "
                    "from serving.forecasts_latest where source = ?",
                    [s],
                ).fetchone()
                latest_run, row = row[0], row[1:]
                runs = [
                    r[0]
                    for r in con.execute(
                        "select distinct run_id from serving.forecasts where source = ? "
                        "order by run_id desc",
                        [s],
                    ).fetchall()
                ]
                runs = [latest_run, *(r for r in runs if r != latest_run)]
                totals = (
                    has_view(con, "forecasts_hierarchy_latest")
                    and con.execute(
                        "select count(*) from serving.forecasts_hierarchy_latest "
                        "where source = ? and run_id = ? and level <> 'area_category'",
                        [s, latest_run],
                    ).fetchone()[0]
                )
                infos.append(
                    SourceInfo(
                        source=s,
                        levels=list(LEVELS) if totals else ["area_category"],
                        latest_run=latest_run,
                        as_of_date=row[0],
                        first_date=row[1],
                        last_date=row[2],
                        series=int(row[3]),
                        models=list(row[4] or []),
                        intervals=bool(row[5]),
                        runs=runs,
                    )
                )
            where = "where f.source = ?" if source is not None else ""
            params: list[Any] = [source] if source is not None else []
            total = con.execute(
                f"select count(distinct f.series_id) from serving.forecasts_latest f {where}",
                params,
            ).fetchone()[0]
            rows = con.execute(
                f"select distinct f.source, f.area, f.category, f.series_id "
                f"from serving.forecasts_latest f {where} "
                f"order by 1, 2, 3 limit ? offset ?",
                [*params, limit, offset],
            ).fetchall()
        return SeriesResponse(
            sources=infos,
            series=[
                SeriesInfo(source=r[0], area=r[1], category=r[2], series_id=r[3]) for r in rows
            ],
            total_series=int(total),
            limit=limit,
            offset=offset,
        )

    @app.get(
        "/forecast",
        response_model=ForecastResponse,
        responses={
            **ERRORS,
            200: {
                "description": "The forecasts (JSON), or CSV with format=csv or Accept: text/csv",
                "content": {
                    "text/csv": {
                        "schema": {"type": "string"},
                        "example": ",".join(CSV_COLUMNS) + "\n"
                        "boston,area_category,B2,Larceny,boston|B2|Larceny,"
                        "20240630T060000-bbbbbbbb,2024-06-29,forecast,2024-06-30,1,xgboost,"
                        "3.0,3.214,1.0,5.0,0.0,7.0,\n",
                    }
                },
            },
        },
        summary="Daily forecasts of one series or of a total, latest run by default",
        description="One series (`level=area_category`, the default: `area` and `category`) "
        "or a coherent total from the bottom-up hierarchy: `level=area` (all categories of an "
        "area), `level=category` (all areas), `level=city` (the whole source). Dates: `start` "
        "(default: the first forecast day), then `end` or `days`. `history_days` adds the "
        "recorded counts of the days up to the run's as-of date. Values are rounded to "
        f"{DECIMALS} decimals.",
    )
    def forecast(
        request: Request,
        source: Annotated[
            str,
            Query(min_length=1, max_length=100, pattern=TEXT, openapi_examples=_example("boston")),
        ],
        area: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=200,
                pattern=TEXT,
                openapi_examples=_example("B2"),
                description="required for level area_category and area",
            ),
        ] = None,
        category: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=200,
                pattern=TEXT,
                openapi_examples=_example("Larceny"),
                description="required for level area_category and category",
            ),
        ] = None,
        level: Annotated[
            Level, Query(description="area_category (one series), area, category or city")
        ] = "area_category",
        start: Annotated[
            date | None,
            Query(description="first date (inclusive; default the first forecast day)"),
        ] = None,
        end: Annotated[date | None, Query(description="last date (inclusive)")] = None,
        days: Annotated[
            int | None,
            Query(
                ge=1,
                le=366,
                openapi_examples=_example(7),
                description="number of days from start (not with end)",
            ),
        ] = None,
        history_days: Annotated[
            int,
            Query(
                ge=0,
                le=3660,
                openapi_examples=_example(28),
                description="recorded daily counts of this many days up to as_of_date",
            ),
        ] = 0,
        run_id: Annotated[
            str | None,
            Query(max_length=100, pattern=TEXT, description="a run from /series (default: latest)"),
        ] = None,
        model: Annotated[
            str | None,
            Query(max_length=100, pattern=TEXT, description="only this model's rows (a series)"),
        ] = None,
        format: Annotated[
            Literal["json", "csv"] | None,
            Query(description="csv, or send Accept: text/csv (default json)"),
        ] = None,
    ) -> Any:
        if start is not None and end is not None and start > end:
            raise _bad(f"start ({start}) is after end ({end})", "start", str(start))
        if days is not None and end is not None:
            raise _bad("give end or days, not both", "days", days)
        for name, value, summed in (
            ("area", area, level in ("category", "city")),
            ("category", category, level in ("area", "city")),
        ):
            if summed and value is not None:
                raise _bad(f"{name} is summed out at level {level!r}: leave it out", name, value)
            if not summed and value is None:
                raise _bad(f"{name} is required at level {level!r}", name)
        if model is not None and level != "area_category":
            raise _bad("model applies to level area_category only", "model", model)
        key_area = area if area is not None else ALL
        key_category = category if category is not None else ALL
        with connect() as con:
            if not has_view(con, "forecasts_latest"):
                raise HTTPException(503, "the published warehouse has no forecasts yet")
            known = [
                r[0]
                for r in con.execute(
                    "select distinct source from serving.forecasts order by 1"
                ).fetchall()
            ]
            if source not in known:
                raise _bad(
                    f"unknown source {source!r}; known sources: {known} (see /series)",
                    "source",
                    source,
                )
            bottom = level == "area_category"
            if bottom:
                table, where = "serving.forecasts", "source = ? and area = ? and category = ?"
            else:
                if not has_view(con, "forecasts_hierarchy_latest"):
                    raise _bad(
                        "this published copy has no totals (published before they were): "
                        "publish it again",
                        "level",
                        level,
                    )
                table = "serving.forecasts_hierarchy"
                where = "level = ? and source = ? and area = ? and category = ?"
            key: list[Any] = ([] if bottom else [level]) + [source, key_area, key_category]
            runs = [
                r[0]
                for r in con.execute(
                    f"select distinct run_id from {table} where {where} order by run_id desc",
                    key,
                ).fetchall()
            ]
            if not runs:
                what = {
                    "area_category": f"no series with area {area!r} and category {category!r}",
                    "area": f"no area total for area {area!r}",
                    "category": f"no category total for category {category!r}",
                    "city": "no city total",
                }[level]
                raise _bad(
                    f"{what} in source {source!r} (see /series?source={source})",
                    "area" if area is not None else "category" if category else "level",
                    area if area is not None else category,
                )
            if run_id is None:
                # the latest run of the source (serving.*_latest: the rule lives in dbt)
                run_id = con.execute(
                    f"select any_value(run_id) from {table}_latest where {where}", key
                ).fetchone()[0]
                if run_id is None:
                    raise _bad(
                        f"not in the latest run of source {source!r}; ask one of its runs: {runs}",
                        "run_id",
                    )
            elif run_id not in runs:
                raise _bad(
                    f"run {run_id!r} has no forecasts for this selection; runs: {runs}",
                    "run_id",
                    run_id,
                )
            where += " and run_id = ?"
            key.append(run_id)
            as_of, series_id, first, last = con.execute(
                f"select max(as_of_date), max(series_id), min(date), max(date) "
                f"from {table} where {where}",
                key,
            ).fetchone()
            if start is not None and start > last:
                raise _bad(
                    f"start {start} is past the forecast horizon: run {run_id!r} (as of "
                    f"{as_of}) forecasts {first} to {last}",
                    "start",
                    str(start),
                )
            if end is not None and end < first:
                raise _bad(
                    f"end {end} is before the first forecast day {first} of run {run_id!r}: "
                    "for recorded counts, ask history_days=",
                    "end",
                    str(end),
                )
            if days is not None:
                end = (start or first) + timedelta(days=days - 1)
            if bottom:
                columns = (
                    "date, horizon, model, forecast, forecast_mean, lo_80, hi_80, lo_95, hi_95"
                )
            else:
                columns = "date, horizon, null, forecast, forecast, lo_80, hi_80, lo_95, hi_95"
            sql = f"select {columns} from {table} where {where}"
            params = list(key)
            if model is not None:
                sql += " and model = ?"
                params.append(model)
            if start is not None:
                sql += " and date >= ?"
                params.append(start)
            if end is not None:
                sql += " and date <= ?"
                params.append(end)
            sql += " order by date, model limit ?" if bottom else " order by date limit ?"
            params.append(MAX_POINTS)
            rows = con.execute(sql, params).fetchall()
            if model is not None and not rows:
                models = [
                    r[0]
                    for r in con.execute(
                        f"select distinct model from {table} where {where} order by 1", key
                    ).fetchall()
                ]
                if model not in models:
                    raise _bad(
                        f"model {model!r} not in run {run_id!r}; models: {models}",
                        "model",
                        model,
                    )
            history: list[RecordedDay] = []
            if history_days and as_of is not None:
                # the run's own bottom series, summed like its totals
                members = (
                    "select distinct series_id from serving.forecasts where source = ? "
                    "and run_id = ?"
                )
                member_params: list[Any] = [source, run_id]
                for name, value in (("area", area), ("category", category)):
                    if value is not None:
                        members += f" and {name} = ?"
                        member_params.append(value)
                history = [
                    RecordedDay(date=r[0], incident_count=_clean(float(r[1])))
                    for r in con.execute(
                        "select date, sum(incident_count) from serving.daily_counts "
                        f"where source = ? and series_id in ({members}) "
                        "and date > ? and date <= ? group by date order by date",
                        [source, *member_params, as_of - timedelta(days=history_days), as_of],
                    ).fetchall()
                ]
        points = []
        for r in rows:
            bounds = dict(zip(BOUNDS, (_clean(v) for v in r[5:9]), strict=True))
            old = {b.removeprefix("forecast_"): v for b, v in bounds.items()}
            points.append(
                ForecastPoint(
                    date=r[0],
                    horizon=r[1],
                    model=r[2],
                    forecast=_clean(r[3]),
                    forecast_mean=_clean(r[4]),
                    **bounds,
                    **old,
                )
            )
        models_seen = sorted({p.model for p in points if p.model})
        body = ForecastResponse(
            source=source,
            level=level,
            area=key_area,
            category=key_category,
            series_id=series_id,
            run_id=run_id,
            as_of_date=as_of,
            model=models_seen[0] if len(models_seen) == 1 else None,
            intervals=any(getattr(p, b) is not None for p in points for b in BOUNDS),
            points=points,
            history=history,
        )
        if _wants_csv(format, request.headers.get("accept")):
            return _csv(body)
        return body

    return app


app = create_app()


def main(argv: list[str] | None = None) -> int:
    """``make serve``: uvicorn on 127.0.0.1:8000 without proxy-header rewriting (see above)."""
    import uvicorn

    parser = argparse.ArgumentParser(
        prog="python -m serving.api", description="Serve the read-only forecast API."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    # proxy_headers=False: uvicorn would otherwise take the client address from X-Forwarded-For
    # for any peer in FORWARDED_ALLOW_IPS (127.0.0.1 by default); trusted proxies are ours to
    # decide (CRIMECAST_API_TRUSTED_PROXIES).
    uvicorn.run(app, host=args.host, port=args.port, proxy_headers=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
