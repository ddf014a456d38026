"""The Evidence dashboard site: built on a sample warehouse, served, and loaded page by page in
headless Chromium; the rendered DOM must show each page's tables, charts and inputs, and no error.

One site build serves every test of the session (module fixture). Skipped only when npm is not
installed (CI installs Node.js); Chromium is required (Debian: ``apt-get install -y
--no-install-recommends chromium``). Screenshots: ``artifacts/screenshots/<view>.png``
(git-ignored); the README's are copies of three of them (docs/img/).

Pages are driven through the DevTools protocol over a pipe (``--remote-debugging-pipe``, no
extra package): each view waits until its page has settled (no loading skeleton, every input
resolved, the text unchanged for a moment) instead of a fixed virtual-time budget, which
DuckDB-wasm's worker outruns; console errors and uncaught exceptions are collected per view.

Note: like ``make dashboards``, this publishes into ``dashboards/sources/crimecast/`` and builds
into ``dashboards/build/`` (Evidence reads its sources from inside the project).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import functools
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from conftest import copy_warehouse

from orchestration.config import REPO_ROOT

pytestmark = [
    pytest.mark.slow,  # a pipeline run, an npm site build and Chromium
    pytest.mark.skipif(
        shutil.which("npm") is None,
        reason="npm is not installed: the dashboards are an Evidence (Node.js) site; CI has it",
    ),
]

SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: fills of the shaded bands (dashboards/components/BandChart.svelte)
BAND_80, BAND_95 = "#60a5fa", "#bfdbfe"

# view (path and query) → texts that only appear once its queries ran and its components
# rendered (chart titles are drawn in the chart, so table headers and input labels are checked)
PAGES: dict[str, list[str]] = {
    "/": [
        "Sources and data age",
        "Data age (days)",
        "France:",
        "São Paulo:",
        "Boston Police Department",
        "Rows dropped",
        "duplicate record",
    ],
    "/forecasts": [
        "Expected incidents over the forecast days",
        "All areas",
        "All categories",
        "80% band from",
        "95% band to",
        "the 80 % band caught",
    ],
    "/backtest": [
        "Poisson reference MAE",
        "a model-based reference, not a floor",
        "MAE 95% low",
        "day-block bootstrap interval",
        "vs best baseline",
        "Diff. 95% low",
        "baseline: median, 28 days",
        "the one the pipeline chose on the",
        "Inside 80% band",
        "Inside 95% band",
        "baseline: same weekday last week",
        "champion (best per series)",
        "1 day ahead",
        "expected counts",
    ],
    "/explanations": ["Top drivers of the forecasts", "Anomalies", "All series"],
    "/map": [
        "Areas on the map",
        "drawn as its polygon",
        "Expected incidents, next 7 days",
        "Mean week of the last 4",
        "no street map underneath",
        "(Roxbury)",
        "have plausible coordinates",
    ],
    "/france": ["Region / département", "Auvergne", "95% band to", "2030"],
    "/saopaulo": ["Showing:", "Place type", "Records behind them", "Monday (segunda-feira)"],
    "/about": ["Recorded crime is not crime", "Feedback loops", "patrol allocation"],
}
ERROR_TEXTS = (
    "Binder Error",
    "Catalog Error",
    "Parser Error",
    "Conversion Error",
    "Internal Error",
    "Invalid Input Error",
    "Error in query",
    "is not defined",
    "options failed to load",
    "No Records",  # a <Value/> whose query returned nothing: an input did not resolve
)
#: warehouse column and table names that page prose must not show
COLUMN_NAMES = ("lo_80", "hi_95", "forecast_mean", "ml.forecasts", "roll_mean_28", "doy_sin")


def _chromium() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "Chromium is needed to render the dashboards: "
        "apt-get install -y --no-install-recommends chromium"
    )


@dataclass
class View:
    """One rendered view: its DOM after it settled, its visible text, the console errors."""

    dom: str
    errors: list[str] = field(default_factory=list)
    #: every URL the page fetched (the Resource Timing entries), data: URIs excluded
    resources: list[str] = field(default_factory=list)

    @functools.cached_property
    def text(self) -> str:
        dom = re.sub(r"<(script|style)\b[^>]*>.*?</\1>", " ", self.dom, flags=re.S | re.I)
        return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", dom)).split())

    def input(self, name: str) -> tuple[str, list[tuple[str, str]]]:
        """(selected value, [(option value, option label), ...]) of a UrlDropdown."""
        m = re.search(
            rf'<div[^>]*data-input="{name}"[^>]*data-value="([^"]*)".*?<select[^>]*>(.*?)</select>',
            self.dom,
            flags=re.S,
        )
        assert m, f"no input {name!r} on the page"
        options = re.findall(r'<option[^>]*value="([^"]*)"[^>]*>(.*?)</option>', m.group(2))
        return html.unescape(m.group(1)), [(html.unescape(v), html.unescape(t)) for v, t in options]

    def share_link(self) -> str:
        m = re.search(r'<a[^>]*data-share-link[^>]*href="([^"]*)"', self.dom) or re.search(
            r'<a[^>]*href="([^"]*)"[^>]*data-share-link', self.dom
        )
        assert m, "no 'link to this view' on the page"
        return html.unescape(m.group(1))


# settled: no loading skeleton, every page query answered, every UrlDropdown resolved, the band
# charts drawn
_SETTLED_JS = """(() => {
  if (document.readyState !== 'complete') return '';
  if (document.querySelector('.animate-pulse')) return '';
  // every page query (Evidence registers each as globalThis[Symbol.for(name)]) has answered
  for (const key of Object.getOwnPropertySymbols(globalThis)) {
    let q;
    try { q = globalThis[key] && globalThis[key].value; } catch (e) { continue; }
    if (q && typeof q === 'object' && 'dataLoaded' in q && 'hash' in q && !q.dataLoaded) return '';
  }
  if (document.querySelector('[data-input][data-value=""]')) return '';
  for (const c of document.querySelectorAll('[data-band-chart]'))
    if (+c.dataset.points > 0 && !c.querySelector('svg')) return '';
  return document.body.innerText;
})()"""


class Browser:
    """Headless Chromium driven through the DevTools protocol over a pipe: fd 3 carries commands
    to it, fd 4 its answers, each a JSON message ended by NUL (``--remote-debugging-pipe``)."""

    def __init__(self) -> None:
        self.profile = tempfile.mkdtemp(prefix="chromium-")
        args = [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={self.profile}",
            # no host but the test server: nothing may come from the internet
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--remote-debugging-pipe",
            "about:blank",
        ]
        # the shell hands our stdin/stdout pipes to Chromium as fds 3 and 4
        self.proc = subprocess.Popen(
            ["sh", "-c", 'exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null 2>/dev/null', *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.next_id = 0
        self.buffer = b""
        self.events: list[dict] = []

    def _send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(msg).encode() + b"\0")
        self.proc.stdin.flush()
        while True:
            while b"\0" not in self.buffer:
                chunk = os.read(self.proc.stdout.fileno(), 1 << 20)
                if not chunk:
                    raise RuntimeError(f"chromium closed the pipe during {method}")
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def render(
        self,
        url: str,
        screenshot: Path | None = None,
        width: int = 1280,
        height: int = 1600,
        timeout_s: float = 90.0,
    ) -> View:
        target = self._send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self._send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        try:
            self._send("Runtime.enable", session=session)
            self._send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                session=session,
            )
            self.events.clear()
            self._send("Page.navigate", {"url": url}, session=session)
            deadline, last, stable_since = time.monotonic() + timeout_s, None, None
            while time.monotonic() < deadline:
                got = self._send(
                    "Runtime.evaluate",
                    {"expression": _SETTLED_JS, "returnByValue": True},
                    session=session,
                )["result"].get("value")
                now = time.monotonic()
                if got and got == last:
                    if stable_since and now - stable_since >= 2.0:
                        break
                else:
                    stable_since = now if got else None
                last = got
                time.sleep(0.5)
            else:
                raise AssertionError(f"{url} did not settle within {timeout_s:.0f} s")
            dom = self._send(
                "Runtime.evaluate",
                {"expression": "document.documentElement.outerHTML", "returnByValue": True},
                session=session,
            )["result"]["value"]
            resources = self._send(
                "Runtime.evaluate",
                {
                    "expression": "performance.getEntriesByType('resource').map(e => e.name)",
                    "returnByValue": True,
                },
                session=session,
            )["result"]["value"]
            if screenshot is not None:
                shot = self._send("Page.captureScreenshot", {"format": "png"}, session=session)
                screenshot.write_bytes(base64.b64decode(shot["data"]))
            errors = []
            for event in self.events:
                if event.get("sessionId") != session:
                    continue
                params = event.get("params", {})
                if event.get("method") == "Runtime.exceptionThrown":
                    details = params["exceptionDetails"]
                    errors.append(
                        (details.get("exception") or {}).get("description") or details["text"]
                    )
                elif (
                    event.get("method") == "Runtime.consoleAPICalled" and params["type"] == "error"
                ):
                    errors.append(" ".join(str(a.get("value", "")) for a in params["args"]))
            return View(dom=dom, errors=errors, resources=[url, *resources])
        finally:
            self._send("Target.closeTarget", {"targetId": target})

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError):
            self._send("Browser.close")
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def site(sample_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's sample warehouse (what `make run` builds), then the site asset
    itself on it (publish + npm), as `make run` does after the pipeline."""
    from orchestration.definitions import build_resources
    from orchestration.defs.serving.site import BUILD_DIR, dashboards_site

    warehouse = copy_warehouse(sample_warehouse, tmp_path_factory.mktemp("dashboards") / "w")
    with pytest.MonkeyPatch.context() as mp:
        for var in [v for v in os.environ if v.startswith("CRIMECAST_")]:
            mp.delenv(var)
        mp.setenv("CRIMECAST_WAREHOUSE", str(warehouse))
        result = dg.materialize([dashboards_site], resources=build_resources(warehouse))
    assert result.success
    (event,) = result.get_asset_materialization_events()
    assert event.asset_key == dg.AssetKey(["dashboards", "site"])
    assert event.materialization.metadata["skipped"].value is False
    assert (BUILD_DIR / "index.html").exists()
    return BUILD_DIR


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[str]:
    """The static site on 127.0.0.1 (an ephemeral port), in a thread."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep the test output clean
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    b = Browser()
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def views(server: str, browser: Browser) -> Iterator[dict[str, View]]:
    """Views rendered on demand, once each, with a screenshot (1000 px wide) of every one."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    cache: dict[str, View] = {}

    class Views(dict):
        def __missing__(self, path: str) -> View:
            name = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "index"
            shot = SCREENSHOTS / f"{name}.png"
            shot.unlink(missing_ok=True)
            cache[path] = browser.render(server + path, screenshot=shot, width=1000, height=1400)
            assert shot.stat().st_size > 10_000, f"{path}: empty screenshot"
            return cache[path]

    yield Views()


@pytest.fixture(scope="module")
def copy() -> Iterator[duckdb.DuckDBPyConnection]:
    """The published copy the site was built from (read-only)."""
    from serving.publish import DEFAULT_TARGET

    con = duckdb.connect(str(DEFAULT_TARGET), read_only=True)
    try:
        yield con
    finally:
        con.close()


def _bands(view: View) -> list[tuple[int, int]]:
    """(points with an 80 % band, with a 95 % band) of every band chart of the view, after
    checking that the shaded areas are drawn (SVG paths filled with the band colours)."""
    charts = re.findall(
        r'<div[^>]*data-band-chart[^>]*data-band-80="(\d+)"[^>]*data-band-95="(\d+)"', view.dom
    )
    return [(int(a), int(b)) for a, b in charts]


def _has_fill(view: View, colour: str) -> bool:
    # ECharts' SVG renderer writes fill="#60a5fa" (or rgb(96,165,250) in a style)
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return bool(
        re.search(rf'<path[^>]*fill="{colour}"', view.dom, flags=re.I)
        or re.search(rf"<path[^>]*fill:\s*rgb\({r},\s*{g},\s*{b}\)", view.dom)
    )


@pytest.mark.parametrize("page", list(PAGES))
def test_page_renders_its_content_without_errors(views: dict[str, View], page: str):
    view = views[page]
    missing = [t for t in PAGES[page] if t not in view.text]
    assert not missing, f"{page}: {missing} not rendered; page text starts: {view.text[:1500]}"
    errors = [t for t in ERROR_TEXTS if re.search(rf"\b{re.escape(t)}\b", view.text)]
    assert not errors, f"{page} shows an error: {errors}; text: {view.text[:3000]}"
    # Evidence draws a failed query/chart as a red box (ErrorChart, InlineError)
    classes = " ".join(re.findall(r'class="([^"]*)"', view.dom))
    assert "bg-negative/10" not in classes, f"{page} shows an Evidence error box"
    assert not view.errors, f"{page}: errors in the browser console: {view.errors[:5]}"
    names = [n for n in COLUMN_NAMES if n in view.text]
    assert not names, f"{page}: warehouse names in the page text: {names}"


def test_charts_are_drawn(views: dict[str, View]):
    """ECharts draws once the data is loaded: a canvas (Evidence charts) or an SVG (bands)."""
    for page in ("/", "/forecasts", "/backtest", "/explanations", "/france", "/saopaulo", "/map"):
        assert "<canvas" in views[page].dom or "<svg" in views[page].dom, f"{page}: no chart"


@pytest.mark.parametrize(
    "path",
    [
        "/forecasts",  # every area, every category: the source's total
        "/forecasts?source=houston&area=1",  # an area over all categories
        "/forecasts?source=boston&category=Larceny",  # a category over all areas
    ],
)
def test_every_selection_has_shaded_bands(views: dict[str, View], copy, path: str):
    """Totals included: the bands come from the coherent hierarchy, one per forecast day."""
    view = views[path]
    source, _ = view.input("source")
    area, _ = view.input("area")
    category, _ = view.input("category")
    days = copy.execute(
        "select count(*) from serving.forecasts_hierarchy where source = ? and area = ? "
        "and category = ? and hi_95 is not null "
        "and run_id = (select max(run_id) from serving.forecasts_hierarchy where source = ?)",
        [source, area, category, source],
    ).fetchone()[0]
    assert days > 0, f"{path}: the copy has no bands for {source}/{area}/{category}"
    assert _bands(view) == [(days, days)], f"{path}: bands {_bands(view)}, {days} days expected"
    assert _has_fill(view, BAND_80) and _has_fill(view, BAND_95), f"{path}: no shaded band"
    assert "the 80 % band caught" in view.text


def test_a_single_series_has_bands_and_the_url_chooses_it(views: dict[str, View], copy):
    area, category = copy.execute(
        "select area, category from serving.forecasts_hierarchy where source = 'boston' "
        "and level = 'area_category' order by area desc, category limit 1"
    ).fetchone()
    view = views[f"/forecasts?source=boston&area={area}&category={category.replace(' ', '+')}"]
    assert view.input("area")[0] == area and view.input("category")[0] == category
    assert _bands(view) and _bands(view)[0][0] > 0
    link = view.share_link()
    assert f"area={area}" in link and "source=boston" in link


def test_an_input_resets_when_its_upstream_input_no_longer_offers_its_value(
    views: dict[str, View], copy
):
    """?source=houston&area=B2 (a Boston district): the area resets to all areas, the list
    holds only Houston's areas, and the shared link drops the stale area."""
    boston = {
        r[0]
        for r in copy.execute(
            "select distinct area from serving.daily_counts where source = 'boston'"
        ).fetchall()
    }
    houston = {
        r[0]
        for r in copy.execute(
            "select distinct area from serving.daily_counts where source = 'houston'"
        ).fetchall()
    }
    stale = sorted(boston - houston)[0]
    view = views[f"/forecasts?source=houston&area={stale}"]
    assert view.input("source")[0] == "houston"
    value, options = view.input("area")
    assert value == "*", f"area kept {value!r} after the source changed"
    offered = {v for v, _ in options} - {"*"}
    assert offered and offered <= houston, f"non-Houston areas offered: {offered - houston}"
    assert "No forecast for this selection" not in view.text
    assert _bands(view), "the reset view shows no chart"
    link = view.share_link()
    assert "source=houston" in link and "area=" not in link


def test_france_place_resets_when_the_level_changes(views: dict[str, View]):
    region = views["/france"].input("place")[0]
    assert region.startswith("region-")
    view = views[f"/france?level=departement&place={region}"]
    value, options = view.input("place")
    assert value.startswith("departement-"), f"a département view kept {value!r}"
    assert all(v.startswith("departement-") for v, _ in options)
    assert _bands(view) and _bands(view)[0][1] > 0, "no forecast bands for the département"


def test_url_parameters_set_every_input(views: dict[str, View], copy):
    neighbourhood = copy.execute(
        "select neighbourhood from serving.saopaulo_place_probabilities "
        "order by neighbourhood desc limit 1"
    ).fetchone()[0]
    sp = views[
        f"/saopaulo?neighbourhood={neighbourhood.replace(' ', '+')}&weekday=DOMINGO"
        "&period=NOITE&brand=Samsung"
    ]
    assert [sp.input(n)[0] for n in ("neighbourhood", "weekday", "period", "brand")] == [
        neighbourhood,
        "DOMINGO",
        "NOITE",
        "Samsung",
    ]
    bt = views["/backtest?source=houston&horizon=7"]
    assert bt.input("source")[0] == "houston" and bt.input("horizon")[0] == "7"
    assert "source=houston" in bt.share_link() and "horizon=7" in bt.share_link()


def test_lists_sort_naturally_and_speak_human(views: dict[str, View]):
    areas = [label for _, label in views["/forecasts?source=houston"].input("area")[1]]
    numbered = [int(m.group(1)) for a in areas if (m := re.fullmatch(r"District (\d+)", a))]
    assert len(numbered) >= 2 and numbered == sorted(numbered), areas
    horizons = [v for v, _ in views["/backtest"].input("horizon")[1]]
    assert [int(h) for h in horizons] == sorted(int(h) for h in horizons), horizons
    weekdays = [label for _, label in views["/saopaulo"].input("weekday")[1]]
    assert weekdays[0].startswith("Monday") and weekdays[-1].startswith("Sunday"), weekdays
    sp = views["/saopaulo"].text
    assert "República" in sp or "Sé" in sp  # accents restored
    assert "(via pública)" in sp and "Via Publica" not in sp  # translated place types


def test_backtest_follows_source_and_horizon(views: dict[str, View], copy):
    """The leaderboard is the chosen source's; the chart and its totals are the horizon's."""

    def champion_mae(source: str, horizon: int) -> str:
        mae = copy.execute(
            "select sum(mae * n) / sum(n) from serving.backtest_metrics where source = ? "
            "and model = 'champion' and horizon = ? and split = 'test' "
            "and run_id = (select max(run_id) from serving.backtest_metrics where source = ?)",
            [source, horizon, source],
        ).fetchone()[0]
        return f"{mae:.3f}"

    def days(source: str, horizon: int) -> int:
        return copy.execute(
            "select count(distinct date) from serving.backtest_predictions where source = ? "
            "and model = 'champion' and horizon = ? and split = 'test' and cutoff = ("
            "select max(cutoff) from serving.backtest_predictions where source = ? "
            "and split = 'test')",
            [source, horizon, source],
        ).fetchone()[0]

    h1, h28 = views["/backtest?source=houston"], views["/backtest?source=houston&horizon=28"]
    assert champion_mae("houston", 1) in h1.text
    assert champion_mae("boston", 1) not in h1.text
    assert f"Over these {days('houston', 1)} days" in h1.text
    assert f"Over these {days('houston', 28)} days" in h28.text
    assert days("houston", 1) != days("houston", 28)


def test_explanations_and_anomalies_are_readable(views: dict[str, View], copy):
    present = dict(copy.execute("select name, present from serving.availability").fetchall())
    view = views["/explanations?source=boston"]
    if present["explanations"]:
        assert "Mean size of contribution" in view.text
        assert re.search(r"mean of the last \d+ days|count the day before", view.text)
    else:
        assert "has not produced forecast explanations" in view.text
    if present["anomalies"]:
        checked = copy.execute(
            "select sum(n) from serving.interval_coverage where source = 'boston' "
            "and split = 'test' and model = 'champion' and horizon = 1 "
            "and round(nominal * 100) = 95 and coalesce(bin, 'all') = 'all' "
            "and run_id = (select max(run_id) from serving.interval_coverage "
            "where source = 'boston')"
        ).fetchone()[0]
        assert f"chance alone would put about {0.05 * checked:,.0f}" in view.text
        assert "Anomalous days in this selection" in view.text
        assert "boston|" not in view.text  # series labels, not ids
        assert re.search(r"\(Downtown\)|\(Roxbury\)|All areas ·|· all categories", view.text)
    else:
        assert "has not produced anomalies" in view.text
    series = views["/explanations?source=boston"].input("series")[1]
    one = next(v for v, _ in series if v != "*")
    filtered = views[f"/explanations?source=boston&series={one.replace('|', '%7C')}"]
    assert filtered.input("series")[0] == one


def test_overview_lists_every_source_with_its_data_age(views: dict[str, View], copy):
    view = views["/"]
    for title in ("Boston Police Department", "Houston Police Department", "France:", "São Paulo:"):
        assert title in view.text, f"{title} missing from the overview"
    newest = copy.execute(
        "select max(date) from serving.daily_counts where source = 'boston'"
    ).fetchone()[0]
    days = (datetime.date.today() - newest).days  # the page counts in the browser, today
    assert re.search(rf"\b({days:,}|{days + 1:,})\b", view.text)  # +1: past midnight
    missing = [
        r[0]
        for r in copy.execute("select name from serving.availability where not present").fetchall()
    ]
    if missing:
        assert "Not produced yet by the pipeline" in view.text
    else:
        assert "Every table the site reads is present." in view.text


@pytest.mark.parametrize("source", ["houston"])  # boston has boundaries: below
def test_the_map_draws_every_forecast_area_at_its_position_offline(
    views: dict[str, View], copy, source: str
):
    """One bubble (a Leaflet SVG path) per area with a position and a forecast in the latest
    run, on tiles that are data: URIs (no tile server: the page works offline)."""
    expected = copy.execute(
        "select count(*) from serving.area_locations as l where l.source = ? "
        "and l.latitude is not null and l.area in (select area from "
        "serving.forecasts_hierarchy_latest where source = ? and level = 'area')",
        [source, source],
    ).fetchone()[0]
    assert expected > 0, f"the copy has no located forecast area for {source}"
    view = views[f"/map?source={source}"]
    assert view.input("source")[0] == source
    bubbles = re.findall(r"<path[^>]*leaflet-interactive[^>]*>", view.dom)
    assert len(bubbles) == expected, f"{len(bubbles)} bubbles drawn, {expected} expected"
    tiles = re.findall(r"<img[^>]*leaflet-tile[^>]*>", view.dom)
    assert tiles, "no map background drawn"
    sources = [m.group(1) for t in tiles if (m := re.search(r'src="([^"]*)"', t))]
    assert sources and all(src.startswith("data:") for src in sources), sources[:3]
    assert f"source={source}" in view.share_link()


def test_a_source_with_boundaries_draws_one_polygon_per_area_offline(views: dict[str, View], copy):
    """Boston's mapping points at a GeoJSON file (sources/boston.yml, `boundaries`): the site
    build copied it into the static folder with the warehouse's area codes, and the page draws
    one Leaflet path per forecast area, filled (an AreaMap, not bubbles), on data: tiles, and
    fetches nothing but the test server."""
    from serving.boundaries import DEFAULT_TARGET

    index = json.loads((DEFAULT_TARGET / "index.json").read_text())
    assert index["sources"] == {"boston": "boston.geojson"}, index
    shapes = json.loads((DEFAULT_TARGET / "boston.geojson").read_text())["features"]
    codes = {f["properties"]["crimecast_area"] for f in shapes}
    forecast = {
        r[0]
        for r in copy.execute(
            "select area from serving.area_map where source = 'boston' and expected_7d is not null"
        ).fetchall()
    }
    assert forecast and forecast <= codes, f"areas without a polygon: {forecast - codes}"
    view = views["/map?source=boston"]
    assert view.input("source")[0] == "boston"
    assert "each area is drawn as its polygon" in view.text
    paths = re.findall(r"<path[^>]*leaflet-interactive[^>]*>", view.dom)
    assert len(paths) == len(forecast), f"{len(paths)} areas drawn, {len(forecast)} expected"
    # a polygon's outline closes (SVG "z"); a bubble is drawn as two arcs ("a")
    assert all(re.search(r'd="M[^"]*z"', p) for p in paths), paths[:2]
    tiles = re.findall(r"<img[^>]*leaflet-tile[^>]*>", view.dom)
    sources = [m.group(1) for t in tiles if (m := re.search(r'src="([^"]*)"', t))]
    assert sources and all(src.startswith("data:") for src in sources), sources[:3]
    origin = re.match(r"https?://[^/]+", view.resources[0]).group(0)
    remote = [u for u in view.resources if not u.startswith((origin, "data:"))]
    assert not remote, f"requests outside the test server: {remote[:5]}"
    assert any(u.endswith("/boundaries/boston.geojson") for u in view.resources)
