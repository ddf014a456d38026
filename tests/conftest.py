"""Shared test fixtures (keep small and generic).

The sample warehouse (`crimecast run` on the built-in sample) is built once per session
(``sample_warehouse``, shared by pytest-xdist workers through a file lock) and copied per module
or per test (``copy_warehouse``, ``sample_copy``): a module that only reads the pipeline's
output never runs the pipeline itself.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from filelock import FileLock

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Real public extracts beside the project (never copied into it): ../shared/data
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"


@pytest.fixture
def tmp_warehouse(tmp_path: Path) -> Path:
    """Path of a fresh DuckDB warehouse file in its own temporary folder (not created yet)."""
    folder = tmp_path / "warehouse"
    folder.mkdir()
    return folder / "crimecast.duckdb"


@pytest.fixture
def warehouse_con(tmp_warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """An open connection to `tmp_warehouse`, closed after the test."""
    con = duckdb.connect(str(tmp_warehouse))
    try:
        yield con
    finally:
        con.close()


@pytest.fixture
def shared_data() -> Path:
    """The real extracts folder; tests using it are skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data extracts not available at {SHARED_DATA}")
    return SHARED_DATA


#: the longest files, longest first (seconds measured on 2 idle cores, `--durations`): they start
#: first so that none ends the run alone. With ``--dist loadfile`` each worker is handed two
#: files at the start (worker 1: the 1st and 3rd, worker 2: the 2nd and 4th), then one at a time
#: as it frees up; the site and the Spark build share the session's sample warehouse (the first
#: of them builds it), the reliability and hostile-run files build their own.
LONGEST_FIRST = (
    "test_dashboards.py",  # sample build + Evidence site + Chromium
    "test_reliability_publish.py",  # four pipeline runs in subprocesses
    "test_spark.py",  # the dbt project on local Spark
    "test_hostile_runs.py",  # killed and failing `crimecast run`s
    "test_reliability_incremental.py",
    "test_partitions.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files in :data:`LONGEST_FIRST` order, then the others as collected; each file kept
    whole (its module fixtures are built once). ``make unit`` passes
    ``--no-loadscope-reorder``: by default xdist would reorder files by their number of
    tests."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    first_seen = {}
    for index, item in enumerate(items):
        first_seen.setdefault(item.path, index)
    items.sort(key=lambda item: (rank.get(item.path.name, len(rank)), first_seen[item.path]))


# ------------------------------------------------------------------ the sample warehouse, once
#: what `crimecast run` printed while it built the session's sample warehouse (beside it)
SAMPLE_RUN_OUTPUT = "crimecast_run.out"
#: the Dagster instance of that run: beside the sample warehouse's folder
SAMPLE_DAGSTER_HOME = "sample_dagster_home"


def _build_sample(warehouse: Path, dagster_home: Path) -> None:
    """`crimecast run` in this process on the built-in sample, with no CRIMECAST_* setting but
    the warehouse (what `make run` builds, without the site); what it prints is kept beside the
    warehouse (:data:`SAMPLE_RUN_OUTPUT`, read by tests/test_cli.py)."""
    import contextlib
    import io

    from orchestration.cli import main

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("CRIMECAST_"):
                mp.delenv(name)
        mp.setenv("CRIMECAST_WAREHOUSE", str(warehouse))
        mp.setenv("CRIMECAST_SKIP_DASHBOARDS", "1")
        mp.setenv("DAGSTER_HOME", str(dagster_home))
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["run"])
    (warehouse.parent / SAMPLE_RUN_OUTPUT).write_text(out.getvalue())
    tail = out.getvalue()[-3000:] + err.getvalue()[-3000:]
    assert code == 0, f"crimecast run on the sample failed:\n{tail}"


@pytest.fixture(scope="session")
def sample_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample warehouse of this session: READ ONLY (take a copy to write). Built by the
    first test that asks; with xdist the workers share one build (the folder of the session's
    base temp, a lock around the build)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # common to every worker of this run
    folder = root / "sample_warehouse"
    warehouse = folder / "crimecast.duckdb"
    done, failed = root / "sample_warehouse.done", root / "sample_warehouse.failed"
    with FileLock(str(root / "sample_warehouse.lock")):
        if failed.exists():
            pytest.fail(f"the sample warehouse build failed: {failed.read_text()}")
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            home = root / SAMPLE_DAGSTER_HOME  # outside the folder copy_warehouse copies
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir()
            try:
                _build_sample(warehouse, home)
            except BaseException as exc:
                failed.write_text(f"{type(exc).__name__}: {exc}"[:4000])
                raise
            done.touch()
    return warehouse


def copy_warehouse(warehouse: Path, folder: Path) -> Path:
    """A private copy of ``warehouse`` and what lies beside it (sample inputs, artifacts, the
    published copy) in ``folder`` (created; must not exist); returns the copied .duckdb path."""
    shutil.copytree(warehouse.parent, folder)
    return folder / warehouse.name


@pytest.fixture
def sample_copy(sample_warehouse: Path, tmp_path: Path) -> Path:
    """A copy of the sample warehouse for one test (it may write to it)."""
    return copy_warehouse(sample_warehouse, tmp_path / "sample_copy")


# ----------------------------------------------------------------------- dbt in this process
#: settings the dbt project reads while parsing: a manifest is parsed once per value of them
DBT_PARSE_ENV = ("CRIMECAST_SERIES_PRESET", "CRIMECAST_MIN_YEAR")
_manifests: dict[tuple, object] = {}
_parse_root: list[Path] = []  # this process's folder for the parse's artifacts


def pytest_unconfigure(config: pytest.Config) -> None:
    for folder in _parse_root:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class DbtRun:
    """What one dbt command gave, shaped like ``subprocess.CompletedProcess``: ``stdout`` holds
    the lines dbt prints (info, warnings, errors)."""

    returncode: int
    stdout: str
    stderr: str = ""


def _manifest(key: tuple, env: Mapping[str, str], vars_: list[str]):
    if key not in _manifests:
        from dbt.cli.main import dbtRunner

        if not _parse_root:
            _parse_root.append(Path(tempfile.mkdtemp(prefix="crimecast-dbt-parse-")))
        folder = _parse_root[0] / f"m{len(_manifests)}"

        with pytest.MonkeyPatch.context() as mp:
            for name, value in env.items():
                mp.setenv(name, value)
            folder.mkdir(parents=True, exist_ok=True)
            mp.setenv("CRIMECAST_WAREHOUSE", str(folder / "crimecast.duckdb"))
            result = dbtRunner().invoke(
                ["parse", "--quiet", "--project-dir", str(DBT_PROJECT_DIR)]
                + ["--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(folder / "target")]
                + ["--log-path", str(folder / "logs")]
                + [a for v in vars_ for a in ("--vars", v)]
            )
        assert result.success, f"dbt parse failed: {result.exception}"
        _manifests[key] = result.result
    return _manifests[key]


def run_dbt(
    warehouse: Path,
    *args: str,
    target: Path,
    env: Mapping[str, str] | None = None,
) -> DbtRun:
    """``dbt <args>`` (a command and its options) on ``warehouse`` in this process (dbtRunner),
    with the project's manifest parsed once per session (and per :data:`DBT_PARSE_ENV` value)
    instead of a ``dbt`` subprocess that parses the whole project again. The warehouse file must
    be named crimecast.duckdb (the manifest's catalog); ``env``: extra environment (a value of
    "" unsets it); logs and artifacts under ``target``."""
    from dbt.cli.main import dbtRunner

    env = dict(env or {})
    parse_env = {n: env.get(n, os.environ.get(n, "")) for n in DBT_PARSE_ENV}
    parse_env = {n: v for n, v in parse_env.items() if v}
    # --vars count when dbt parses too (configs): parse again for another value
    vars_ = [a for i, a in enumerate(args) if i and args[i - 1] == "--vars"]
    key = (*sorted(parse_env.items()), *vars_)
    manifest = _manifest(key, parse_env, vars_)
    lines: list[str] = []

    def keep(event) -> None:
        if event.info.level in ("info", "warn", "error") and event.info.msg:
            lines.append(str(event.info.msg))

    with pytest.MonkeyPatch.context() as mp:
        for name in DBT_PARSE_ENV:
            mp.delenv(name, raising=False)
        for name, value in {**parse_env, **env}.items():
            if value:
                mp.setenv(name, value)
            else:
                mp.delenv(name, raising=False)
        mp.setenv("CRIMECAST_WAREHOUSE", str(warehouse))
        result = dbtRunner(manifest=manifest, callbacks=[keep]).invoke(
            [*args, "--no-use-colors", "--project-dir", str(DBT_PROJECT_DIR)]
            + ["--profiles-dir", str(DBT_PROJECT_DIR)]
            + ["--target-path", str(target), "--log-path", str(target / "logs")]
        )
    _close_dbt_duckdb()
    if result.exception is not None:
        lines.append(f"{type(result.exception).__name__}: {result.exception}")
    return DbtRun(0 if result.success else 1, "\n".join(lines) + "\n")


def _close_dbt_duckdb() -> None:
    """Release the warehouse file: dbt-duckdb keeps its DuckDB instance (opened with the
    profile's settings) in the process after a command, and a test's own connection to the
    file would then fail ("different configuration")."""
    import gc

    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        env, DuckDBConnectionManager._ENV = DuckDBConnectionManager._ENV, None
    if env is not None:
        env.close()
    gc.collect()  # cursors dbt's threads left open hold the instance too
