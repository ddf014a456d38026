"""Hostile runs (issue 17, items 6, 7 and 9): what `crimecast run` prints when a step fails,
a warehouse held by another process, a killed run and its dbt child, what a rejected incident
load says it changed, and which sources a run loads.

Every input is built here in code; runs go through the real CLI (`crimecast run`, in this
process or in a subprocess) or the real assets, on small inputs, each on its own warehouse.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.cli import main, step_timings

REPO = Path(__file__).resolve().parents[1]
SAOPAULO_COLUMNS = "BAIRRO, MARCA_OBJETO, DIA_SEMANA, PERIODO, RUBRICA, DESCR_SUBTIPOLOCAL"

# --------------------------------------------------------------------------------------------
# input generators


def france_regional(path: Path, *, bad_line: int | None = None, value: str = "beaucoup") -> Path:
    """A regional SSMSI file as published (UTF-8 BOM, `;`, quoted, decimal comma): one region,
    two indicators, 2016–2024; with ``bad_line``, that line's `nombre` is ``value``."""
    header = [
        "Code_region",
        "annee",
        "indicateur",
        "unite_de_compte",
        "nombre",
        "taux_pour_mille",
        "insee_pop",
        "insee_pop_millesime",
        "insee_log",
        "insee_log_millesime",
    ]
    rows = []
    for indicator in ("Cambriolages de logement", "Vols sans violence contre des personnes"):
        for year in range(2016, 2025):
            n = 1000 + 10 * (year - 2016)
            rows.append(
                [
                    "84",
                    str(year),
                    indicator,
                    "Infraction",
                    str(n),
                    f"{n / 8000:.3f}".replace(".", ","),
                    "8000000",
                    str(year),
                    "4000000",
                    str(year),
                ]  # fmt: skip
            )
    if bad_line is not None:
        rows[bad_line - 2][4] = value  # line 1 is the header
    text = "\n".join(";".join(f'"{v}"' for v in r) for r in [header, *rows]) + "\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    return path


def saopaulo_tab_separated(path: Path) -> Path:
    """A São Paulo records file saved with tabs: the header is one column for `,` and `;`."""
    header = ["BAIRRO", "MARCA_OBJETO", "DIA_SEMANA", "PERIODO", "RUBRICA", "DESCR_SUBTIPOLOCAL"]
    row = ["CENTRO", "SAMSUNG", "SEGUNDA", "MANHA", "ROUBO", "Via Publica"]
    path.write_text("\t".join(header) + "\n" + "\t".join(row) + "\n", encoding="utf-8")
    return path


def houston_file(path: Path, days: int = 0) -> Path:
    """A Houston file in the published schema with ``days`` days of a few records (0: a
    header and no data rows)."""
    lines = ["date,hour,offense,beat,number"]
    for d in range(days):
        for hour, offense, beat in ((3, "Theft", "10H10"), (14, "Burglary", "12D20")):
            lines.append(f"1/{d + 1}/2024,{hour},{offense},{beat},1")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def boston_header_only(path: Path) -> Path:
    path.write_text(
        "INCIDENT_NUMBER,OFFENSE_CODE,OFFENSE_CODE_GROUP,OFFENSE_DESCRIPTION,DISTRICT,"
        "REPORTING_AREA,SHOOTING,OCCURRED_ON_DATE,YEAR,MONTH,DAY_OF_WEEK,HOUR,UCR_PART,STREET,"
        "Lat,Long,Location\n",
        encoding="utf-8",
    )
    return path


# --------------------------------------------------------------------------------------------
# helpers


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A fresh warehouse and Dagster home in the environment of `crimecast run`."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    warehouse = tmp_path / "w" / "crimecast.duckdb"
    for name in list(os.environ):
        if name.startswith("CRIMECAST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CRIMECAST_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("CRIMECAST_SKIP_DASHBOARDS", "1")

    def env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return {"root": tmp_path, "warehouse": warehouse, "home": home, "env": env}


def run_cli(capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    code = main(["run"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def last_run_steps() -> set[str]:
    """The steps that ran (started and ended) in the latest run of the instance."""
    instance = dg.DagsterInstance.get()
    run = instance.get_run_records(limit=1)[0].dagster_run
    return {step for step, _secs in step_timings(instance, run.run_id)}


def run_steps(partition: str) -> set[str]:
    """The steps of the latest run of the instance for that city (partition)."""
    instance = dg.DagsterInstance.get()
    run = next(
        r.dagster_run
        for r in instance.get_run_records()
        if r.dagster_run.tags.get("dagster/partition") == partition
    )
    return {step for step, _secs in step_timings(instance, run.run_id)}


def table_digest(warehouse: Path, table: str) -> str | None:
    """Content hash of a table (None when it does not exist)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        exists = con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema || '.' || table_name = ?",
            [table],
        ).fetchone()[0]
        if not exists:
            return None
        rows = con.execute(f"select * from {table} order by all").fetchall()
    finally:
        con.close()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def assert_no_stack_trace(*texts: str) -> None:
    for text in texts:
        for marker in ("Traceback", "Stack Trace", "Error occurred while executing"):
            assert marker not in text, text[-3000:]


def log_path(out: str) -> Path:
    line = next(ln for ln in out.splitlines() if ln.startswith("Full log of the run"))
    return Path(line.rsplit(": ", 1)[1])


HOLDER = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    print("ready", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
    print("released", flush=True)
    time.sleep(60)
    """
)


def hold_warehouse(path: Path, seconds: float) -> subprocess.Popen:
    """Another process with a read-write connection to ``path`` for ``seconds``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


# --------------------------------------------------------------------------------------------
# one line per failure


def test_france_and_saopaulo_failures_end_in_one_line_each(site, capsys) -> None:
    from orchestration.definitions import build_resources
    from orchestration.defs.france.assets import france_raw
    from orchestration.defs.saopaulo.assets import saopaulo_raw

    # a good France and São Paulo load first (the samples)
    done = dg.materialize([france_raw, saopaulo_raw], resources=build_resources())
    assert done.success
    before = {
        t: table_digest(site["warehouse"], t)
        for t in ("raw.france_regional", "raw.france_departmental", "raw.saopaulo_phone_thefts")
    }

    france = france_regional(site["root"] / "donnee-reg-bad.csv", bad_line=10)
    saopaulo = saopaulo_tab_separated(site["root"] / "celulares.csv")
    site["env"](
        CRIMECAST_SOURCES="france,saopaulo",
        CRIMECAST_INPUT_FRANCE_REGIONAL=str(france),
        CRIMECAST_INPUT_SAOPAULO=str(saopaulo),
    )
    code, out, err = run_cli(capsys)

    assert code == 1
    assert sorted(err.strip().splitlines()[-2:]) == [
        f"FAILED france_raw: france: {france}: line 10, column 'nombre': cannot parse "
        "'beaucoup' as a number",
        f"FAILED raw__saopaulo_phone_thefts: saopaulo: {saopaulo}: wrong delimiter: the header "
        f"is separated by '\\t'; expected ',' or ';' with columns {SAOPAULO_COLUMNS}",
    ]
    assert_no_stack_trace(out, err)
    # the stacks are in the run's full log
    full = log_path(out).read_text()
    assert "Stack Trace" in full and "cannot parse 'beaucoup'" in full
    # nothing was written, and nothing after the raw layer ran
    assert {t: table_digest(site["warehouse"], t) for t in before} == before
    assert last_run_steps() == {"france_raw", "raw__saopaulo_phone_thefts"}


def test_dbt_failure_is_one_line_naming_the_node(site) -> None:
    """A dbt build that fails (here: the France staging model on a warehouse without France
    raw tables) is reported by model and dbt's reason, in one line."""
    from orchestration.definitions import build_resources
    from orchestration.defs.dbt import dbt_failure_line

    site["warehouse"].parent.mkdir(parents=True)
    duckdb.connect(str(site["warehouse"])).close()
    dbt = build_resources()["dbt"]
    invocation = dbt.cli(
        ["build", "--select", "stg_france__regional", "--exclude-resource-type", "unit_test"],
        raise_on_error=False,
    ).wait()
    line = dbt_failure_line(invocation, invocation.get_error())
    assert "\n" not in line
    assert line.startswith("dbt build: 1 failed: model stg_france__regional: ")
    assert "france_regional does not exist" in line
    assert line.endswith(f"(dbt log: {invocation.target_path / 'dbt.log'})")


# --------------------------------------------------------------------------------------------
# a warehouse held by another process


def test_locked_warehouse_waits_then_names_the_holder(site) -> None:
    from orchestration.resources import WarehouseBusyError, WarehouseResource

    holder = hold_warehouse(site["warehouse"], 60)
    try:
        t0 = time.monotonic()
        resource = WarehouseResource(database=str(site["warehouse"]), lock_timeout_s=1.5)
        with pytest.raises(WarehouseBusyError) as caught, resource.connect():
            pass
        waited = time.monotonic() - t0
    finally:
        holder.kill()
        holder.wait()
    message = str(caught.value)
    assert waited >= 1.5
    assert message.startswith(
        f"warehouse {site['warehouse']} is open in another process (PID {holder.pid}: "
    )
    assert message.endswith(
        "); close it (a notebook, the Dagster UI's run, dbt) or query the published copy "
        f"{site['warehouse'].parent / 'published' / 'crimecast.duckdb'}"
    )
    assert "\n" not in message


def test_lock_released_during_the_wait_is_retried(site) -> None:
    from orchestration.resources import WarehouseResource

    holder = hold_warehouse(site["warehouse"], 1.0)
    try:
        t0 = time.monotonic()
        with WarehouseResource(database=str(site["warehouse"]), lock_timeout_s=20).connect() as con:
            assert con.execute("select 42").fetchone() == (42,)
        waited = time.monotonic() - t0
    finally:
        holder.kill()
        holder.wait()
    assert waited >= 0.5  # it waited for the holder instead of failing at once


def test_run_on_a_locked_warehouse_ends_with_the_holder(site, capsys) -> None:
    holder = hold_warehouse(site["warehouse"], 120)
    try:
        site["env"](CRIMECAST_SOURCES="france", CRIMECAST_LOCK_TIMEOUT_S="1")
        code, out, err = run_cli(capsys)
    finally:
        holder.kill()
        holder.wait()
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        f"FAILED france_raw: WarehouseBusyError: warehouse {site['warehouse']} is open in "
        f"another process (PID {holder.pid}: "
    )
    assert_no_stack_trace(out, err)
    assert table_digest(site["warehouse"], "raw.france_regional") is None


# --------------------------------------------------------------------------------------------
# a rejected incident load, and which sources a run loads


def test_rejected_incident_load_says_what_changed_and_others_stay_independent(site, capsys) -> None:
    from orchestration.definitions import build_resources
    from orchestration.defs.incidents.raw import raw_incidents

    good = houston_file(site["root"] / "houston.csv", days=5)
    site["env"](CRIMECAST_SOURCES="houston", CRIMECAST_INPUT_HOUSTON=str(good))
    assert dg.materialize(
        [raw_incidents], resources=build_resources(), partition_key="houston"
    ).success
    houston_before = table_digest(site["warehouse"], "raw.incidents")

    bad = houston_file(site["root"] / "houston_empty.csv", days=0)
    site["env"](CRIMECAST_SOURCES="houston,france", CRIMECAST_INPUT_HOUSTON=str(bad))
    code, out, err = run_cli(capsys)

    assert code == 1
    assert err.strip().splitlines()[-1] == (
        f"FAILED raw_incidents: houston: {bad}: file has a header but no data rows"
    )
    assert_no_stack_trace(out, err)
    # Houston's rows are as before; France loaded in its own step, and the output says so;
    # São Paulo is not selected and did not run
    assert table_digest(site["warehouse"], "raw.incidents") == houston_before
    assert table_digest(site["warehouse"], "raw.france_regional") is not None
    changed = next(ln for ln in out.splitlines() if ln.startswith("Materialized before"))
    assert "raw/france_regional" in changed and "raw/france_departmental" in changed
    assert "raw/incidents" not in changed
    assert table_digest(site["warehouse"], "raw.saopaulo_phone_thefts") is None
    # Houston's load run failed at its raw step; France's load and the build went on
    assert run_steps(partition="houston") == {"raw_incidents"}
    assert {"france_ml", "published__warehouse"} <= last_run_steps()
    assert "france: france_raw" in out
    # the failure's metadata states what the incident step changed, not "warehouse: unchanged"
    instance = dg.DagsterInstance.get()
    run_id = next(
        r.dagster_run.run_id
        for r in instance.get_run_records()
        if r.dagster_run.tags.get("dagster/partition") == "houston"
    )
    failure = next(
        e.dagster_event
        for e in instance.all_logs(run_id)
        if e.dagster_event is not None and e.dagster_event.is_step_failure
    )
    meta = failure.step_failure_data.user_failure_data.metadata
    assert meta["warehouse"].value == (
        "houston: raw.incidents / raw.source_files / raw.sources rows unchanged (its load "
        "rolled back); no other incident source changed in this run"
    )
    assert "France and São Paulo load in their own steps" in meta["other_sources"].value


def test_one_city_loads_only_that_city(site, capsys) -> None:
    site["env"](
        CRIMECAST_SOURCES="boston",
        CRIMECAST_INPUT_BOSTON=str(boston_header_only(site["root"] / "b.csv")),
    )
    code, out, err = run_cli(capsys)
    assert code == 1
    assert err.strip().splitlines()[-1].startswith("FAILED raw_incidents: boston: ")
    # neither France nor São Paulo ran, and with every load failed no build either
    assert last_run_steps() == {"raw_incidents"}
    assert "Every load failed: the build (dbt, forecasts, published copy) was not run" in out
    for table in ("raw.france_regional", "raw.saopaulo_phone_thefts"):
        assert table_digest(site["warehouse"], table) is None


def test_unknown_source_is_one_line_listing_the_known_ones(site, capsys) -> None:
    site["env"](CRIMECAST_SOURCES="boston,sao_paulo")
    code, out, err = run_cli(capsys)
    assert code == 2
    assert err.strip().splitlines() == [
        "crimecast: CRIMECAST_SOURCES=boston,sao_paulo: unknown source 'sao_paulo' "
        "(known: boston, houston, france, saopaulo)"
    ]
    assert not site["warehouse"].exists()


def test_run_config_sources_keep_france_and_saopaulo_as_they_are(site) -> None:
    from orchestration.definitions import build_resources
    from orchestration.defs.france.assets import france_raw
    from orchestration.defs.incidents.raw import raw_incidents
    from orchestration.defs.saopaulo.assets import saopaulo_raw

    good = houston_file(site["root"] / "houston.csv", days=3)
    result = dg.materialize(
        [raw_incidents, france_raw, saopaulo_raw],
        resources=build_resources(),
        partition_key="houston",
        run_config={
            "ops": {
                "raw_incidents": {
                    "config": {"sources": ["houston"], "inputs": {"houston": str(good)}}
                }
            }
        },
    )
    assert result.success
    for table in ("raw.france_regional", "raw.saopaulo_phone_thefts"):
        assert table_digest(site["warehouse"], table) is None
    meta = {
        m.asset_key.to_user_string(): m.step_materialization_data.materialization.metadata
        for m in result.get_asset_materialization_events()
    }
    assert meta["raw/france_regional"]["reloaded"].value.startswith("no: not in the run's")
    assert meta["raw/saopaulo_phone_thefts"]["reloaded"].value.startswith("no: not in the run's")
    assert meta["raw/incidents"]["rows_by_source"].value == {"houston": 6}


def test_refresh_job_follows_the_selection() -> None:
    from orchestration.definitions import build_defs
    from orchestration.defs.incidents.raw import select_sources

    def raw_ops(names):
        job = build_defs(selection=select_sources(names)).resolve_job_def("refresh_all")
        return {n.name for n in job.graph.nodes} & {
            "raw_incidents",
            "france_raw",
            "raw__saopaulo_phone_thefts",
            "france_ml",
            "ml_forecasts",
            "saopaulo_place_model",
            "published__warehouse",
        }

    assert raw_ops(["boston"]) == {"raw_incidents", "ml_forecasts", "published__warehouse"}
    assert raw_ops(["boston", "france"]) == {
        "raw_incidents",
        "ml_forecasts",
        "france_raw",
        "france_ml",
        "published__warehouse",
    }
    assert raw_ops(["saopaulo"]) == {
        "raw__saopaulo_phone_thefts",
        "saopaulo_place_model",
        "published__warehouse",
    }
    assert len(raw_ops(None)) == 7


# --------------------------------------------------------------------------------------------
# killing the run does not orphan dbt


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


def _alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped is gone for this purpose: it holds no lock)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _run_until_dbt(site: dict) -> tuple[subprocess.Popen, int]:
    """`crimecast run` (São Paulo only: the shortest way to dbt) in a subprocess, up to the
    moment its dbt build is running."""
    env = {**os.environ, "CRIMECAST_SOURCES": "saopaulo", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "run"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        dbt = [c for c in _children(proc.pid) if "/dbt build" in _cmdline(c)]
        if dbt:
            time.sleep(1)  # dbt is working
            return proc, dbt[0]
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"no dbt build started: {proc.communicate()}")


def _assert_gone_and_unlocked(dbt: int, warehouse: Path) -> None:
    deadline = time.monotonic() + 10
    while _alive(dbt) and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        assert not _alive(dbt), f"dbt (PID {dbt}) outlived the run: {_cmdline(dbt)}"
    finally:
        if _alive(dbt):
            os.kill(dbt, signal.SIGKILL)
    duckdb.connect(str(warehouse)).close()  # the lock is free


@pytest.mark.slow
def test_sigkill_of_the_run_does_not_orphan_dbt(site) -> None:
    proc, dbt = _run_until_dbt(site)
    os.kill(proc.pid, signal.SIGKILL)  # the CLI process only, as `kill -9 <pid>` does
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    _assert_gone_and_unlocked(dbt, site["warehouse"])


@pytest.mark.slow
def test_sigterm_of_the_run_stops_dbt_and_says_so(site) -> None:
    proc, dbt = _run_until_dbt(site)
    os.kill(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert err.strip().splitlines()[-1] == (
        "FAILED crimecast_dbt_assets: interrupted (Ctrl-C or SIGTERM): the step was stopped "
        "before it finished"
    )
    assert_no_stack_trace(out, err)
    _assert_gone_and_unlocked(dbt, site["warehouse"])
