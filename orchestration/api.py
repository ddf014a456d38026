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
* A token bucket per client IP (``CRIMECAST_API_RATE`` requests/second, ``CRIMECAST_API_BURST``
  burst; defaults 5/s and 30) answers 429 with ``Retry-After`` when empty. The client IP is the
  socket peer: behind a reverse proxy, configure the proxy (uvicorn ``--proxy-headers``).

Run: ``.venv/bin/uvicorn orchestration.api:app --host 127.0.0.1 --port 8000`` (``make serve``).
"""

from __future__ import annotations

import math
import os
import threading
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

from orchestration.config import settings
from orchestration.publish import DEFAULT_TARGET

EXEMPT_PATHS = {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"}
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
class TokenBucket:
    """Per-key token buckets: ``rate`` tokens per second up to ``burst``. Thread-safe."""

    def __init__(self, rate: float, burst: int, max_keys: int = 10_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate, self.burst, self.max_keys = float(rate), float(burst), max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """Take a token for ``key``: 0.0 when allowed, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                self._evict(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate

    def _evict(self, now: float) -> None:
        if len(self._buckets) <= self.max_keys:
            return
        full_after = self.burst / self.rate  # an idle bucket is full again after this long
        for key, (_tokens, last) in list(self._buckets.items()):
            if now - last >= full_after:
                del self._buckets[key]


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
    database: str
    published_at: str | None
    tables: dict[str, bool]


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
) -> FastAPI:
    """The app. ``database`` defaults to the published copy (read at each request, so it may be
    published after start-up); ``rate``/``burst`` to CRIMECAST_API_RATE/BURST or 5/s and 30."""
    rate = rate if rate is not None else float(os.environ.get("CRIMECAST_API_RATE", "5"))
    burst = burst if burst is not None else int(os.environ.get("CRIMECAST_API_BURST", "30"))
    limiter = TokenBucket(rate, burst)

    app = FastAPI(
        title="crimecast forecast API",
        version="1.0.0",
        description="Read-only daily recorded-crime forecasts from the crimecast warehouse "
        "(published copy). Recorded crime is not crime; forecasts are expected counts with "
        "uncertainty; not for individual-level decisions or unreviewed patrol allocation.",
    )
    app.state.limiter = limiter

    def db_path() -> Path:
        return Path(database) if database is not None else published_path()

    @contextmanager
    def connect() -> Iterator[duckdb.DuckDBPyConnection]:
        path = db_path()
        if not path.exists():
            raise HTTPException(
                status_code=503,
                detail=f"no published warehouse at {path}: run `make dashboards` "
                "(or python -m orchestration.publish) first",
            )
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error as exc:
            raise HTTPException(status_code=503, detail=f"cannot open {path}: {exc}") from exc
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

    @app.middleware("http")
    async def rate_limit(request: Request, call_next):
        if request.url.path not in EXEMPT_PATHS:
            client = request.client.host if request.client else "unknown"
            wait = limiter.take(client)
            if wait > 0:
                return JSONResponse(
                    status_code=429,
                    content={"detail": f"rate limit exceeded: retry in {math.ceil(wait)} s"},
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
        return await call_next(request)

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
            try:
                tables = dict(
                    con.execute("select name, present from serving.availability").fetchall()
                )
                row = con.execute("select published_at from serving.published").fetchone()
                published_at = str(row[0]) if row else None
            except duckdb.Error:
                pass  # a copy published by hand without the serving schema
            return Health(
                status="ok" if tables.get("forecasts") else "degraded",
                database=str(db_path()),
                published_at=published_at,
                tables=tables,
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
