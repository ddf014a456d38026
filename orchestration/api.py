"""Read-only forecast API over the published copy of the warehouse (FastAPI).

Endpoints: ``GET /health``, ``GET /series`` (what can be asked), ``GET /forecast`` (one
series' forecasts of one run: the latest by default), OpenAPI docs at ``/docs``.

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

Run: ``.venv/bin/python -m orchestration.api [--host 127.0.0.1] [--port 8000]`` (``make serve``).
It starts uvicorn with ``proxy_headers=False``: uvicorn's own proxy-header handling would replace
the socket peer by any ``X-Forwarded-For`` a local client sends. Running ``uvicorn
orchestration.api:app`` yourself, pass ``--no-proxy-headers``.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import duckdb
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from slowapi import Limiter
from slowapi.errors import RateLimitExceeded
from slowapi.middleware import SlowAPIMiddleware
from starlette import types as asgi

from orchestration.config import settings
from orchestration.publish import DEFAULT_TARGET

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
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
class SourceInfo(BaseModel):
    source: str
    latest_run: str = Field(description="run_id of the latest forecast run (the default)")
    as_of_date: date | None = Field(description="last full day of data of that run")
    first_date: date | None
    last_date: date | None
    series: int = Field(description="number of (area, category) series in that run")
    models: list[str]
    intervals: bool = Field(description="whether that run has lo_80/hi_80/lo_95/hi_95")
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
    model: str
    forecast: float | None
    forecast_mean: float | None = Field(None, description="the mean, when the run publishes it")
    lo_80: float | None = None
    hi_80: float | None = None
    lo_95: float | None = None
    hi_95: float | None = None


class ForecastResponse(BaseModel):
    source: str
    area: str
    category: str
    series_id: str
    run_id: str
    as_of_date: date | None
    model: str | None = Field(description="the model, when the run has one for this series")
    intervals: bool = Field(description="whether any point has interval bounds")
    points: list[ForecastPoint]


class Health(BaseModel):
    status: str
    database: str = Field(description="file name of the published copy (never its path)")
    published_at: str | None
    tables: dict[str, bool]
    detail: str | None = Field(None, description="what is wrong when the status is degraded")


# ---------------------------------------------------------------------------------- helpers
def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _bad(message: str, field: str, value: Any = None) -> HTTPException:
    """A 422 shaped like FastAPI's own validation errors (the documented schema)."""
    error = {"loc": ["query", field], "msg": message, "type": "value_error", "input": value}
    return HTTPException(status_code=422, detail=[error])


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
        version="1.0.0",
        description="Read-only daily recorded-crime forecasts from the crimecast warehouse "
        "(published copy). Recorded crime is not crime; forecasts are expected counts with "
        "uncertainty; not for individual-level decisions or unreviewed patrol allocation.",
        # Starlette's slash redirect builds its Location from the Host header
        redirect_slashes=False,
    )
    app.state.limiter = limiter
    app.add_exception_handler(RateLimitExceeded, _rate_limited)
    app.add_middleware(SlowAPIMiddleware)
    app.add_middleware(HeadAsGet)  # outermost: the limiter sees HEAD as the GET it is

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
                "`python -m orchestration.publish` first)",
            )
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as exc:
            raise unreadable(exc) from exc
        try:
            yield con
        finally:
            con.close()

    def has_forecasts(con: duckdb.DuckDBPyConnection) -> bool:
        row = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'serving' and table_name = 'forecasts'"
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
            if not has_forecasts(con):
                return SeriesResponse(
                    sources=[], series=[], total_series=0, limit=limit, offset=offset
                )
            known = [
                r[0]
                for r in con.execute(
                    "select distinct source from serving.forecasts order by 1"
                ).fetchall()
            ]
            if source is not None and source not in known:
                raise _bad(f"unknown source {source!r}; known sources: {known}", "source", source)
            wanted = [source] if source is not None else known
            infos = []
            for s in wanted:
                runs = [
                    r[0]
                    for r in con.execute(
                        "select distinct run_id from serving.forecasts where source = ? "
                        "order by run_id desc",
                        [s],
                    ).fetchall()
                ]
                row = con.execute(
                    "select max(as_of_date), min(date), max(date), count(distinct series_id), "
                    "list(distinct model order by model), count(lo_80) + count(hi_80) "
                    "+ count(lo_95) + count(hi_95) "
                    "from serving.forecasts where source = ? and run_id = ?",
                    [s, runs[0]],
                ).fetchone()
                infos.append(
                    SourceInfo(
                        source=s,
                        latest_run=runs[0],
                        as_of_date=row[0],
                        first_date=row[1],
                        last_date=row[2],
                        series=int(row[3]),
                        models=list(row[4] or []),
                        intervals=bool(row[5]),
                        runs=runs,
                    )
                )
            latest = "(select source, max(run_id) as run_id from serving.forecasts group by 1)"
            where = "where f.source = ?" if source is not None else ""
            params: list[Any] = [source] if source is not None else []
            total = con.execute(
                f"select count(distinct f.series_id) from serving.forecasts f "
                f"join {latest} l using (source, run_id) {where}",
                params,
            ).fetchone()[0]
            rows = con.execute(
                f"select distinct f.source, f.area, f.category, f.series_id "
                f"from serving.forecasts f join {latest} l using (source, run_id) {where} "
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
        responses=ERRORS,
        summary="Daily forecasts of one series (source, area, category), latest run by default",
    )
    def forecast(
        source: Annotated[str, Query(min_length=1, max_length=100, pattern=TEXT)],
        area: Annotated[str, Query(min_length=1, max_length=200, pattern=TEXT)],
        category: Annotated[str, Query(min_length=1, max_length=200, pattern=TEXT)],
        start: Annotated[date | None, Query(description="first date (inclusive)")] = None,
        end: Annotated[date | None, Query(description="last date (inclusive)")] = None,
        run_id: Annotated[
            str | None,
            Query(max_length=100, pattern=TEXT, description="a run from /series (default: latest)"),
        ] = None,
        model: Annotated[str | None, Query(max_length=100, pattern=TEXT)] = None,
    ) -> ForecastResponse:
        if start is not None and end is not None and start > end:
            raise _bad(f"start ({start}) is after end ({end})", "start", str(start))
        with connect() as con:
            if not has_forecasts(con):
                raise HTTPException(503, "the published warehouse has no forecasts yet")
            if not con.execute(
                "select count(*) from serving.forecasts where source = ?", [source]
            ).fetchone()[0]:
                known = [
                    r[0]
                    for r in con.execute(
                        "select distinct source from serving.forecasts order by 1"
                    ).fetchall()
                ]
                raise _bad(
                    f"unknown source {source!r}; known sources: {known} (see /series)",
                    "source",
                    source,
                )
            runs = [
                r[0]
                for r in con.execute(
                    "select distinct run_id from serving.forecasts "
                    "where source = ? and area = ? and category = ? order by run_id desc",
                    [source, area, category],
                ).fetchall()
            ]
            if not runs:
                raise _bad(
                    f"no series with area {area!r} and category {category!r} in source "
                    f"{source!r} (see /series?source={source})",
                    "area",
                    area,
                )
            if run_id is None:
                run_id = runs[0]
            elif run_id not in runs:
                raise _bad(
                    f"run {run_id!r} has no forecasts for this series; runs: {runs}",
                    "run_id",
                    run_id,
                )
            sql = (
                "select date, horizon, model, forecast, lo_80, hi_80, lo_95, hi_95, "
                "forecast_mean from serving.forecasts "
                "where source = ? and area = ? and category = ? and run_id = ?"
            )
            params: list[Any] = [source, area, category, run_id]
            if model is not None:
                sql += " and model = ?"
                params.append(model)
            if start is not None:
                sql += " and date >= ?"
                params.append(start)
            if end is not None:
                sql += " and date <= ?"
                params.append(end)
            sql += " order by date, model limit ?"
            params.append(MAX_POINTS)
            rows = con.execute(sql, params).fetchall()
            if model is not None and not rows:
                models = [
                    r[0]
                    for r in con.execute(
                        "select distinct model from serving.forecasts where source = ? "
                        "and area = ? and category = ? and run_id = ? order by 1",
                        [source, area, category, run_id],
                    ).fetchall()
                ]
                if model not in models:
                    raise _bad(
                        f"model {model!r} not in run {run_id!r}; models: {models}",
                        "model",
                        model,
                    )
            meta = con.execute(
                "select max(as_of_date), max(series_id) from serving.forecasts "
                "where source = ? and area = ? and category = ? and run_id = ?",
                [source, area, category, run_id],
            ).fetchone()
        points = [
            ForecastPoint(
                date=r[0],
                horizon=r[1],
                model=r[2],
                forecast=_clean(r[3]),
                forecast_mean=_clean(r[8]),
                **{k: _clean(v) for k, v in zip(INTERVALS, r[4:8], strict=True)},
            )
            for r in rows
        ]
        models_seen = sorted({p.model for p in points})
        return ForecastResponse(
            source=source,
            area=area,
            category=category,
            series_id=meta[1],
            run_id=run_id,
            as_of_date=meta[0],
            model=models_seen[0] if len(models_seen) == 1 else None,
            intervals=any(getattr(p, k) is not None for p in points for k in INTERVALS),
            points=points,
        )

    return app


app = create_app()


def main(argv: list[str] | None = None) -> int:
    """``make serve``: uvicorn on 127.0.0.1:8000 without proxy-header rewriting (see above)."""
    import uvicorn

    parser = argparse.ArgumentParser(
        prog="python -m orchestration.api", description="Serve the read-only forecast API."
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
