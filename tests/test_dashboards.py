"""The Evidence dashboard site: built on a sample warehouse, served, and loaded page by page in
headless Chromium; the rendered DOM must show each page's tables/charts and no error.

One site build serves every page test. Skipped only when npm is not installed (CI installs
Node.js); Chromium is required (Debian: ``apt-get install -y --no-install-recommends chromium``).
Screenshots: ``artifacts/screenshots/<page>.png`` (git-ignored).

Note: like ``make dashboards``, this publishes into ``dashboards/sources/crimecast/`` and builds
into ``dashboards/build/`` (Evidence reads its sources from inside the project).
"""

from __future__ import annotations

import functools
import html
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.config import REPO_ROOT

pytestmark = pytest.mark.skipif(
    shutil.which("npm") is None,
    reason="npm is not installed: the dashboards are an Evidence (Node.js) site; CI installs it",
)

SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# page → texts that only appear once its queries ran and its components rendered (chart titles
# are drawn inside the canvas, so they are not in the DOM text)
PAGES: dict[str, list[str]] = {
    "/": ["Data freshness", "Rows read", "Rows dropped", "Last full day", "boston", "houston"],
    "/forecasts": ["Forecast incidents, whole horizon", "All areas", "Expected", "95% high"],
    "/backtest": ["Noise floor MAE", "vs best baseline", "seasonal_naive_7", "mean_28", "xgboost"],
    "/explanations": ["Top drivers of the forecasts", "Anomalies"],
    "/france": ["Region / département", "Auvergne", "95% high", "2030"],
    "/saopaulo": ["Showing:", "Place type", "Records behind them"],
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
    "No Records",  # a <Value/> whose query returned nothing: an input did not resolve
)


def _chromium() -> str:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "Chromium is needed to render the dashboards: "
        "apt-get install -y --no-install-recommends chromium"
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sample warehouse by the in-process pipeline, then the site asset itself (publish + npm)."""
    from orchestration.assets.serving import BUILD_DIR, dashboards_site
    from orchestration.definitions import ALL_ASSETS, build_resources

    warehouse = tmp_path_factory.mktemp("dashboards") / "crimecast.duckdb"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CRIMECAST_WAREHOUSE", str(warehouse))
        for var in ("CRIMECAST_SOURCES", "CRIMECAST_CUTOFF", "CRIMECAST_INPUT_BOSTON"):
            mp.delenv(var, raising=False)
        # a smaller, faster sample: 5 areas x 5 categories per source, two France models
        mp.setenv("CRIMECAST_SERIES_PRESET", "top5x5")
        mp.setenv("CRIMECAST_FRANCE_MODELS", "last_value,drift")
        mp.setenv("CRIMECAST_SKIP_DASHBOARDS", "1")  # when the site asset is among ALL_ASSETS
        pipeline = [a for a in ALL_ASSETS if a is not dashboards_site]
        assert dg.materialize(pipeline, resources=build_resources(warehouse)).success
        mp.delenv("CRIMECAST_SKIP_DASHBOARDS")
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


def _chromium_run(url: str, mode: list[str]) -> str:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        cmd = [
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
            f"--user-data-dir={profile}",
            "--virtual-time-budget=15000",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--window-size=1280,1600",
            *mode,
            url,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"chromium failed on {url}: {done.stderr[-2000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def rendered(server: str) -> dict[str, str]:
    """Every page's DOM after its scripts ran, and a screenshot of it (two pages at a time)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def one(page: str) -> tuple[str, str]:
        name = page.strip("/") or "index"
        shot = SCREENSHOTS / f"{name}.png"
        shot.unlink(missing_ok=True)
        dom = _chromium_run(server + page, ["--dump-dom"])
        _chromium_run(server + page, [f"--screenshot={shot}"])
        return page, dom

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, PAGES))


def _visible_text(dom: str) -> str:
    dom = re.sub(r"<(script|style)\b[^>]*>.*?</\1>", " ", dom, flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]+>", " ", dom))


@pytest.mark.parametrize("page", list(PAGES))
def test_page_renders_its_content_without_errors(rendered: dict[str, str], page: str):
    dom = rendered[page]
    text = " ".join(_visible_text(dom).split())
    missing = [t for t in PAGES[page] if t not in text]
    assert not missing, f"{page}: {missing} not rendered; page text starts: {text[:1500]}"
    errors = [t for t in ERROR_TEXTS if re.search(rf"\b{re.escape(t)}\b", text)]
    assert not errors, f"{page} shows an error: {errors}; text: {text[:3000]}"
    # Evidence draws a failed query/chart as a red box (ErrorChart, InlineError)
    classes = " ".join(re.findall(r'class="([^"]*)"', dom))
    assert "bg-negative/10" not in classes, f"{page} shows an Evidence error box"
    name = page.strip("/") or "index"
    assert (SCREENSHOTS / f"{name}.png").stat().st_size > 10_000


def test_charts_are_drawn(rendered: dict[str, str]):
    """ECharts draws into a canvas once the data is loaded (grey placeholders before)."""
    for page in ("/", "/forecasts", "/backtest", "/france", "/saopaulo"):
        assert "<canvas" in rendered[page], f"{page}: no chart canvas rendered"


def test_absent_tables_are_announced_present_ones_shown(rendered: dict[str, str]):
    """Explanations and anomalies may or may not be produced yet: either way the page works."""
    from orchestration.publish import DEFAULT_TARGET

    con = duckdb.connect(str(DEFAULT_TARGET), read_only=True)
    try:
        present = dict(con.execute("select name, present from serving.availability").fetchall())
    finally:
        con.close()
    text = " ".join(_visible_text(rendered["/explanations"]).split())
    for name, absent_text, present_text in (
        ("explanations", "has not produced forecast explanations", "Mean absolute contribution"),
        ("anomalies", "has not produced anomalies", "Anomalous days"),
    ):
        expected = present_text if present[name] else absent_text
        assert expected in text, f"{name} (present={present[name]}): {expected!r} not shown"
    overview = _visible_text(rendered["/"])
    if not all(present.values()):
        assert "(not produced yet)" in overview
