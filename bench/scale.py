"""Scale benchmark (issue #8): the incident pipeline at 100 k, 1 M and 10 M incidents.

Per size, on the Houston sample generator scaled to N incidents over 20 years, 60 areas and
32 categories (60 × 32 = 1,920 series × 7,305 days = 14.0 M daily rows at every size), each
stage runs in its own child process, timed (wall) with its peak RSS (``os.wait4`` rusage of the
child, i.e. the largest resident set of the stage's process):

* generate  write the CSV files (``samples.incidents.write_sample``; cached)
* ingest    ``load_source`` into a fresh warehouse (raw.incidents)
* dbt       ``dbt build --select +daily_features +incidents_data_quality`` (models and data
  tests; the dbt unit tests, which check SQL on fixed inputs, run in ``make test`` and are left
  out here as in the pipeline's own dbt build)
* ml        the ``ml_forecasts`` Dagster asset (the default ``lean`` profile, every series)
* incremental: one new day appended (a new file), then ingest + ``dbt build`` again
  (incremental models, same project and target folder, as a daily run has; dbt reads the
  rebuild window the loader wrote in raw.load_log, marked built afterwards); compared with the
  full ingest + dbt above
* pandas    the daily feature mart recomputed with pandas groupby / shift / rolling (as the
  Boston seed did) on the same marts.daily_counts rows, vs the dbt daily_features model time

The load average (1 min) is recorded before and after every stage: the machine is shared.

``--engine spark`` builds the same marts with the dbt ``spark`` target (local Spark in dbt's
process, ``local[2]`` unless CRIMECAST_SPARK_MASTER says otherwise; docs/scale-out.md): after
generate and ingest (the loader writes DuckDB's raw tables, as on DuckDB),

* export    raw.* to Parquet, registered in the Spark metastore (``ingest.parquet``)
* dbt       the same selection, ``--target spark`` (a first build: every model in full)
* ml        the same asset with ``CRIMECAST_ML_ENGINE=spark`` (marts read from Spark, ml.*
  appended there; the models run in this process on pandas either way)

with no incremental or pandas comparison. Each Spark stage has a time limit (``--timeout``);
a stage over it is stopped and recorded as not finished.

    .venv/bin/python bench/scale.py                       # 100k, 1M, 10M
    .venv/bin/python bench/scale.py --sizes 100k,1M --no-ml
    .venv/bin/python bench/scale.py --engine spark --sizes 1M,10M

Writes bench/scale_results.json and bench/scale_results.md (``--engine spark``:
bench/scale_results_spark.*).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
DBT = str(Path(sys.executable).parent / "dbt")
YEARS = 20
AREAS = 60
CATEGORIES = 32
START = date(2005, 1, 1)  # 20 years → 2024-12-31: nothing in the future (implausible_date)
NEXT_DAY = date(2025, 1, 1)
DEFAULT_OUT = REPO / "bench" / "scale_results"
DEFAULT_OUT_SPARK = REPO / "bench" / "scale_results_spark"
DBT_SELECT = ["+daily_features", "+incidents_data_quality"]


def _size(text: str) -> int:
    t = text.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(t[-1], 1)
    return int(float(t.rstrip("km")) * mult)


def _label(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1_000}k"


class _TreeRss:
    """The largest summed resident set of a process and its descendants, sampled from /proc
    once a second in a thread (Linux; 0 elsewhere)."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_mb = pid, 0.0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20
        while not self._done.wait(1.0):
            parents: dict[int, int] = {}
            pages: dict[int, int] = {}
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit():
                    continue
                try:
                    stat = (entry / "stat").read_text()
                    statm = (entry / "statm").read_text()
                except OSError:
                    continue
                pid = int(entry.name)
                parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
                pages[pid] = int(statm.split()[1])
            tree, grew = {self.pid}, True
            while grew:
                more = {p for p, pp in parents.items() if pp in tree} - tree
                tree |= more
                grew = bool(more)
            self.peak_mb = max(self.peak_mb, sum(pages.get(p, 0) for p in tree) * page_mb)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def run_stage(
    name: str,
    cmd: list[str],
    env: dict[str, str],
    log: Path,
    cwd: Path = REPO,
    timeout_s: float | None = None,
) -> dict:
    """Run one stage as a child process; wall time, peak RSS (MB), load averages. A stage
    still running after ``timeout_s`` is killed and recorded as not finished."""
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    timed_out = False
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        tree = _TreeRss(proc.pid)
        timer = None
        if timeout_s:
            timer = threading.Timer(timeout_s, proc.kill)
            timer.start()
        _pid, status, usage = os.wait4(proc.pid, 0)
        if timer is not None:
            timed_out = not timer.is_alive() and time.perf_counter() - t0 >= timeout_s
            timer.cancel()
    wall = time.perf_counter() - t0
    tree.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    result = {
        "stage": name,
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 0),
        # the child and every process under it, summed (Spark's JVM is a child of dbt's
        # process that the rusage above does not count), sampled once a second
        "peak_tree_rss_mb": round(max(tree.peak_mb, usage.ru_maxrss / 1024), 0),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "ok": proc.returncode == 0,
    }
    if timed_out:
        result["timed_out_after_s"] = timeout_s
    print(
        f"  {name:<18} {wall:7.1f} s  {result['peak_rss_mb']:6.0f} MB  "
        f"load {result['load_before']:.2f}→{result['load_after']:.2f}"
        + ("" if result["ok"] else f"  FAILED (see {log})")
        + (f"  (stopped: over {timeout_s:.0f} s)" if timed_out else ""),
        flush=True,
    )
    if not result["ok"]:
        tail = log.read_text(errors="replace")[-3000:]
        print(textwrap.indent(tail, "    | "), flush=True)
    return result


def _py(code: str) -> list[str]:
    return [PY, "-c", textwrap.dedent(code)]


def gen_cmd(n: int, out: Path) -> list[str]:
    return _py(f"""
        from datetime import date
        from samples.incidents import houston_scale_for, write_sample
        scale = houston_scale_for({n}, {YEARS}, {AREAS}, {CATEGORIES})
        write_sample("houston", {str(out)!r}, scale=scale, years={YEARS}, areas={AREAS},
                     categories={CATEGORIES}, start=date.fromisoformat({START.isoformat()!r}))
    """)


def day_cmd(n: int, out: Path) -> list[str]:
    return _py(f"""
        from datetime import date
        from samples.incidents import houston_scale_for, write_sample
        scale = houston_scale_for({n}, {YEARS}, {AREAS}, {CATEGORIES})
        write_sample("houston", {str(out)!r}, scale=scale, areas={AREAS},
                     categories={CATEGORIES}, start=date.fromisoformat({NEXT_DAY.isoformat()!r}),
                     days=1, reuse=False)
    """)


def ingest_cmd(data: Path) -> list[str]:
    return _py(f"""
        import duckdb, json
        from pathlib import Path
        from orchestration.config import settings
        from ingest.loader import load_source
        from ingest.mapping import load_mapping
        con = duckdb.connect(str(settings().warehouse))
        r = load_source(con, load_mapping(Path("sources/houston.yml")), {str(data)!r})
        con.close()
        print(json.dumps({{"rows_inserted": r.rows_inserted, "rows_total": r.rows_total,
                          "files_loaded": len(r.files_loaded)}}))
    """)


def dbt_cmd(target: Path, *extra: str) -> list[str]:
    """dbt build (which rebuilds the window of the loads not built yet, raw.load_log); the
    loads marked built after success, as the Dagster dbt asset does."""
    args = [
        DBT,
        "build",
        "--select",
        *DBT_SELECT,
        "--project-dir",
        "dbt_project",
        "--profiles-dir",
        "dbt_project",
        "--target-path",
        str(target),
        "--exclude-resource-type",
        "unit_test",
        *extra,
    ]
    return _py(f"""
        import os, subprocess, sys
        import duckdb
        from ingest.loader import mark_built, rebuild_window
        db = os.environ["CRIMECAST_WAREHOUSE"]
        con = duckdb.connect(db, read_only=True)
        window = rebuild_window(con)
        con.close()
        print("rebuild window:", window.days, window.dbt_args(), flush=True)
        rc = subprocess.call({args!r} + window.dbt_args())
        if rc == 0:
            con = duckdb.connect(db)
            mark_built(con, window)
            con.close()
        sys.exit(rc)
    """)


ML_CODE = """
    import dagster as dg
    from orchestration.defs.incidents.ml import ml_forecasts
    from orchestration.definitions import build_resources
    r = dg.materialize([ml_forecasts], resources=build_resources())
    assert r.success
"""

PANDAS_CODE = """
    import json, time
    import duckdb
    import numpy as np
    import pandas as pd
    from orchestration.config import settings
    t0 = time.perf_counter()
    con = duckdb.connect(str(settings().warehouse), read_only=True)
    df = con.execute("select series_id, date, incident_count from marts.daily_counts").df()
    con.close()
    t_read = time.perf_counter() - t0
    t1 = time.perf_counter()
    # as the Boston seed did: sort, groupby series, shift for lags, rolling on the shifted series
    df = df.sort_values(["series_id", "date"], kind="stable").reset_index(drop=True)
    g = df.groupby("series_id", sort=False)["incident_count"]
    for k in (1, 7, 14, 28, 364):
        df[f"lag_{k}"] = g.shift(k)
    prev = df["lag_1"]
    gp = prev.groupby(df["series_id"], sort=False)
    for w in (7, 28):
        r = gp.rolling(w, min_periods=w)
        df[f"roll_mean_{w}"] = r.mean().reset_index(level=0, drop=True)
        df[f"roll_std_{w}"] = r.std(ddof=1).reset_index(level=0, drop=True)
    d = pd.to_datetime(df["date"])
    df["day_of_week"] = d.dt.dayofweek
    df["month"] = d.dt.month
    doy = d.dt.dayofyear
    df["doy_sin"] = np.sin(2 * np.pi * doy / 365.25)
    df["doy_cos"] = np.cos(2 * np.pi * doy / 365.25)
    t_compute = time.perf_counter() - t1
    print("PANDAS " + json.dumps({"rows": len(df), "read_s": round(t_read, 2),
                                  "compute_s": round(t_compute, 2)}))
"""


def dbt_model_times(target: Path) -> dict[str, float]:
    try:
        results = json.loads((target / "run_results.json").read_text())["results"]
    except (OSError, ValueError, KeyError):
        return {}
    return {
        r["unique_id"].split(".")[-1]: round(r["execution_time"], 2)
        for r in results
        if r["unique_id"].startswith("model.")
    }


def dbt_test_time(target: Path) -> float:
    try:
        results = json.loads((target / "run_results.json").read_text())["results"]
    except (OSError, ValueError, KeyError):
        return 0.0
    return round(sum(r["execution_time"] for r in results if r["unique_id"].startswith("test.")), 1)


def _keep_results(target: Path, to: Path) -> None:
    """A copy of dbt's run_results.json (per-node timings), before the next build replaces it."""
    if (target / "run_results.json").exists():
        shutil.copyfile(target / "run_results.json", to)


def table_rows(
    warehouse: Path,
    tables: tuple[str, ...] = ("raw.incidents", "marts.daily_counts", "marts.daily_features"),
) -> dict[str, int]:
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in tables}
    finally:
        con.close()


def _start_size(n: int, run: Path, extra_env: dict[str, str] | None = None):
    """A fresh folder for one size (warehouse, Dagster home, logs), the stages' environment,
    and the generate + ingest stages every engine starts with (data cached per size)."""
    data = run.parent / "data" / _label(n)
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    warehouse = run / "crimecast.duckdb"
    env = {
        **os.environ,
        "CRIMECAST_WAREHOUSE": str(warehouse),
        "CRIMECAST_SOURCES": "houston",
        "CRIMECAST_SERIES_PRESET": "all",
        "DBT_PROFILES_DIR": str(REPO / "dbt_project"),
        "DAGSTER_HOME": str(run / "dagster_home"),
        "PYTHONPATH": str(REPO),
        **(extra_env or {}),
    }
    env.pop("CRIMECAST_CUTOFF", None)
    (run / "dagster_home").mkdir()
    logs = run / "logs"
    logs.mkdir()
    stages = [run_stage("generate", gen_cmd(n, data), env, logs / "generate.log")]
    stages.append(run_stage("ingest", ingest_cmd(data), env, logs / "ingest.log"))
    return data, warehouse, env, logs, stages


def bench_size(n: int, work: Path, with_ml: bool) -> dict:
    label = _label(n)
    print(f"\n== {label} incidents ({YEARS} years, {AREAS} areas, {CATEGORIES} categories)")
    run = work / label
    data, warehouse, env, logs, stages = _start_size(n, run)
    stages.append(run_stage("dbt", dbt_cmd(run / "target"), env, logs / "dbt.log"))
    models = dbt_model_times(run / "target")
    tests_s = dbt_test_time(run / "target")
    _keep_results(run / "target", logs / "run_results_full.json")
    if with_ml:
        stages.append(run_stage("ml", _py(ML_CODE), env, logs / "ml.log"))
    rows = table_rows(warehouse)

    # incremental: one more day in a new file
    day_dir = work / "data" / f"{label}_next_day"
    inc = [run_stage("generate next day", day_cmd(n, day_dir), env, logs / "day.log")]
    new_file = data / f"houston_{NEXT_DAY.year}.csv"
    shutil.copyfile(next(day_dir.glob("*.csv")), new_file)
    try:
        inc.append(run_stage("ingest (+1 day)", ingest_cmd(data), env, logs / "ingest_inc.log"))
        inc.append(run_stage("dbt (+1 day)", dbt_cmd(run / "target"), env, logs / "dbt_inc.log"))
    finally:
        new_file.unlink(missing_ok=True)
    inc_models = dbt_model_times(run / "target")
    _keep_results(run / "target", logs / "run_results_incremental.json")

    pandas = run_stage("pandas features", _py(PANDAS_CODE), env, logs / "pandas.log")
    pandas_info = {}
    for line in (logs / "pandas.log").read_text().splitlines():
        if "PANDAS {" in line:  # DuckDB's progress bar may share the line
            pandas_info = json.loads(line.split("PANDAS ", 1)[1])
    by = {s["stage"]: s for s in stages}
    full = by["ingest"]["wall_s"] + by["dbt"]["wall_s"]
    incremental = inc[1]["wall_s"] + inc[2]["wall_s"]
    dbt_features = models.get("daily_features")
    result = {
        "incidents_target": n,
        "label": label,
        "rows": rows,
        "stages": stages,
        "pipeline_s": round(sum(s["wall_s"] for s in stages if s["stage"] != "generate"), 1),
        "pipeline_peak_rss_mb": max(s["peak_rss_mb"] for s in stages if s["stage"] != "generate"),
        "dbt_model_s": models,
        "dbt_tests_s_sum_of_threads": tests_s,
        "incremental": {
            "stages": inc,
            "dbt_model_s": inc_models,
            "full_ingest_plus_dbt_s": round(full, 1),
            "incremental_ingest_plus_dbt_s": round(incremental, 1),
            "speedup": round(full / incremental, 1) if incremental else None,
        },
        "pandas_vs_dbt_features": {
            **pandas_info,
            "pandas_peak_rss_mb": pandas["peak_rss_mb"],
            "dbt_daily_features_model_s": dbt_features,
            "ratio_pandas_compute_over_dbt": (
                round(pandas_info["compute_s"] / dbt_features, 2)
                if pandas_info and dbt_features
                else None
            ),
        },
    }
    print(json.dumps({k: result[k] for k in ("rows", "pipeline_s", "pipeline_peak_rss_mb")}))
    return result


def export_cmd(warehouse: Path, folder: Path) -> list[str]:
    """raw.* of the DuckDB warehouse as Parquet, registered on the Spark target."""
    return [PY, "-m", "ingest.parquet", str(warehouse), str(folder), "--register"] + [
        "--project-dir",
        str(REPO / "dbt_project"),
    ]


def spark_dbt_cmd(target: Path, logs: Path) -> list[str]:
    """The DuckDB stage's dbt selection on the ``spark`` target (absolute paths: Spark runs
    in the size's own folder, where it and Derby write their scratch files)."""
    project = str(REPO / "dbt_project")
    return [
        DBT,
        "build",
        "--target",
        "spark",
        "--select",
        *DBT_SELECT,
        "--project-dir",
        project,
        "--profiles-dir",
        project,
        "--target-path",
        str(target),
        "--log-path",
        str(logs),
        "--exclude-resource-type",
        "unit_test",
    ]


def bench_size_spark(n: int, work: Path, with_ml: bool, timeout_s: float) -> dict:
    """One size on Spark: generate, ingest (DuckDB raw), export, dbt, ml (see the module
    docstring); each Spark stage stopped after ``timeout_s``."""
    label = _label(n)
    print(
        f"\n== {label} incidents on Spark ({YEARS} years, {AREAS} areas, {CATEGORIES} categories)"
    )
    run = (work / f"{label}_spark").resolve()
    _data, warehouse, env, logs, stages = _start_size(
        n, run, {"CRIMECAST_SPARK_DIR": str(run / "spark")}
    )
    stages.append(
        run_stage(
            "export + register",
            export_cmd(warehouse, run / "spark" / "sources"),
            env,
            logs / "export.log",
            cwd=run,
            timeout_s=timeout_s,
        )
    )
    if stages[-1]["ok"]:
        stages.append(
            run_stage(
                "dbt (spark)",
                spark_dbt_cmd(run / "target", logs / "dbt"),
                env,
                logs / "dbt.log",
                cwd=run,
                timeout_s=timeout_s,
            )
        )
    models = dbt_model_times(run / "target")
    if with_ml and stages[-1]["ok"]:
        ml_env = {**env, "CRIMECAST_ML_ENGINE": "spark"}
        stages.append(
            run_stage(
                "ml (spark)", _py(ML_CODE), ml_env, logs / "ml.log", cwd=run, timeout_s=timeout_s
            )
        )
    rows = table_rows(warehouse, ("raw.incidents",))
    result = {
        "incidents_target": n,
        "label": label,
        "engine": "spark",
        "rows": rows,
        "stages": stages,
        "finished": all(s["ok"] for s in stages),
        "pipeline_s": round(sum(s["wall_s"] for s in stages if s["stage"] != "generate"), 1),
        "pipeline_peak_rss_mb": max(s["peak_rss_mb"] for s in stages if s["stage"] != "generate"),
        "dbt_model_s": models,
        "dbt_tests_s_sum_of_threads": dbt_test_time(run / "target"),
    }
    print(json.dumps({k: result[k] for k in ("rows", "finished", "pipeline_s")}))
    return result


def to_markdown_spark(results: list[dict], meta: dict, duckdb_results: list[dict]) -> str:
    """The Spark stages, then both engines side by side (DuckDB from bench/scale_results.json,
    its own run and date)."""
    lines = [
        "# Scale benchmark on Spark (bench/scale.py --engine spark)",
        "",
        f"Machine: {meta['cpus']} cores, shared (load average beside each number); Spark "
        f"{meta.get('spark_master', 'local[2]')} in dbt's process. Same generated data as the "
        f"DuckDB run ({YEARS} years, {AREAS} areas × {CATEGORIES} categories). ML: {meta['ml']}.",
        "",
        "| incidents | stage | wall s | peak RSS MB (process tree, JVM included) | "
        "load 1-min (before→after) |",
        "|---|---|---:|---:|---|",
    ]
    for r in results:
        for s in r["stages"]:
            state = "" if s["ok"] else " FAILED"
            if s.get("timed_out_after_s"):
                state = f" did not finish within {s['timed_out_after_s']:.0f} s"
            lines.append(
                f"| {r['label']} ({r['rows'].get('raw.incidents', 0):,} rows) | {s['stage']} | "
                f"{s['wall_s']} | {s.get('peak_tree_rss_mb', s['peak_rss_mb']):.0f} | "
                f"{s['load_before']}→{s['load_after']}{state} |"
            )
    duck = {r["label"]: r for r in duckdb_results}
    lines += [
        "",
        "## DuckDB and Spark side by side (wall s)",
        "",
        "| incidents | DuckDB dbt | Spark export + dbt | DuckDB ml | Spark ml | "
        "DuckDB ingest → forecasts | Spark ingest → forecasts |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]

    def stage(r: dict | None, *names: str) -> str:
        if r is None:
            return "–"
        by = {s["stage"]: s for s in r["stages"]}
        if not all(n in by and by[n]["ok"] for n in names):
            return "did not finish" if any(n in by for n in names) else "–"
        return f"{sum(by[n]['wall_s'] for n in names):.1f}"

    for r in results:
        d = duck.get(r["label"])
        spark_dbt = stage(r, "export + register", "dbt (spark)")
        spark_total = r["pipeline_s"] if r["finished"] else "did not finish"
        lines.append(
            f"| {r['label']} | {stage(d, 'dbt')} | {spark_dbt} | "
            f"{stage(d, 'ml')} | {stage(r, 'ml (spark)')} | "
            f"{d['pipeline_s'] if d else '–'} | {spark_total} |"
        )
    lines += ["", f"Run at {meta['started']} UTC, total {meta['total_s']} s.", ""]
    return "\n".join(lines)


def to_markdown(results: list[dict], meta: dict) -> str:
    lines = [
        "# Scale benchmark (bench/scale.py)",
        "",
        f"Machine: {meta['cpus']} cores, shared (load average beside each number). "
        f"Houston sample generator, {YEARS} years, {AREAS} areas × {CATEGORIES} categories "
        f"(1,920 series; 14.0 M daily rows at every size). ML: {meta['ml']}.",
        "",
        "| incidents | stage | wall s | peak RSS MB | load 1-min (before→after) |",
        "|---|---|---:|---:|---|",
    ]
    for r in results:
        for s in r["stages"]:
            lines.append(
                f"| {r['label']} ({r['rows']['raw.incidents']:,} rows) | {s['stage']} | "
                f"{s['wall_s']} | {s['peak_rss_mb']:.0f} | {s['load_before']}→{s['load_after']}"
                f"{'' if s['ok'] else ' FAILED'} |"
            )
        lines.append(
            f"| {r['label']} | **ingest → marts{' → forecasts' if meta['ml'] != 'skipped' else ''}"
            f"** | **{r['pipeline_s']}** | **{r['pipeline_peak_rss_mb']:.0f}** | |"
        )
    lines += [
        "",
        "## Incremental: one new day appended (new file) vs the full ingest + dbt build",
        "",
        "| incidents | full ingest + dbt s | +1 day ingest + dbt s | speed-up | load |",
        "|---|---:|---:|---:|---|",
    ]
    for r in results:
        i = r["incremental"]
        loads = "/".join(str(s["load_before"]) for s in i["stages"][1:])
        lines.append(
            f"| {r['label']} | {i['full_ingest_plus_dbt_s']} | "
            f"{i['incremental_ingest_plus_dbt_s']} | {i['speedup']}× | {loads} |"
        )
    lines += [
        "",
        "## Daily features: dbt/DuckDB model vs pandas (groupby / shift / rolling)",
        "",
        "| incidents | daily rows | dbt daily_features model s | pandas compute s | "
        "pandas read s | pandas peak RSS MB | pandas ÷ dbt |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        p = r["pandas_vs_dbt_features"]
        lines.append(
            f"| {r['label']} | {p.get('rows', 0):,} | {p['dbt_daily_features_model_s']} | "
            f"{p.get('compute_s')} | {p.get('read_s')} | {p['pandas_peak_rss_mb']:.0f} | "
            f"{p['ratio_pandas_compute_over_dbt']} |"
        )
    lines += ["", f"Run at {meta['started']} UTC, total {meta['total_s']} s.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100k,1M,10M")
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "work" / "scale")
    ap.add_argument("--no-ml", action="store_true", help="skip the ML stage")
    ap.add_argument("--out", type=Path, default=None, help="results file stem")
    ap.add_argument(
        "--engine",
        choices=("duckdb", "spark"),
        default="duckdb",
        help="duckdb (default) or spark: the dbt spark target (needs Java 17, the [spark] extra)",
    )
    ap.add_argument(
        "--timeout",
        type=float,
        default=2700,
        help="seconds a Spark stage may take (default 45 min)",
    )
    args = ap.parse_args(argv)
    if args.engine == "spark":
        return main_spark(args)
    args.out = args.out or DEFAULT_OUT
    sizes = [_size(s) for s in args.sizes.split(",") if s.strip()]
    t0 = time.perf_counter()
    meta = {
        "started": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "cpus": os.cpu_count(),
        "ml": "skipped" if args.no_ml else "ml_forecasts, default lean profile, every series",
    }
    subprocess.run(
        [DBT, "parse", "--quiet", "--project-dir", "dbt_project", "--profiles-dir", "dbt_project"],
        cwd=REPO,
        check=True,
        env={**os.environ, "DBT_PROFILES_DIR": str(REPO / "dbt_project")},
    )
    results = [bench_size(n, args.work, not args.no_ml) for n in sizes]
    meta["total_s"] = round(time.perf_counter() - t0, 1)
    args.out.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=1) + "\n"
    )
    md = to_markdown(results, meta)
    args.out.with_suffix(".md").write_text(md)
    print("\n" + md)
    if args.out == DEFAULT_OUT:
        sys.path.insert(0, str(REPO))
        from bench.run_bench import update_readme

        # the tables without the page title, into the README's scale section
        if update_readme(md.split("\n", 2)[2].replace("\n## ", "\n#### "), marker="scale"):
            print("updated the scale tables of README.md")
    return 0


def main_spark(args: argparse.Namespace) -> int:
    """``--engine spark``: the sizes on Spark, beside the DuckDB figures on record."""
    try:
        import dbt.adapters.spark  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError:
        print("the Spark engine needs the [spark] extra: make spark-extra (and Java 17)")
        return 2
    if shutil.which("java") is None:
        print("the Spark engine needs Java 17 (java not found on PATH)")
        return 2
    out = args.out or DEFAULT_OUT_SPARK
    sizes = [_size(s) for s in args.sizes.split(",") if s.strip()]
    t0 = time.perf_counter()
    meta = {
        "started": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "cpus": os.cpu_count(),
        "engine": "spark",
        "spark_master": os.environ.get("CRIMECAST_SPARK_MASTER", "local[2]"),
        "ml": "skipped"
        if args.no_ml
        else "ml_forecasts on CRIMECAST_ML_ENGINE=spark, default lean profile, every series",
        "timeout_s": args.timeout,
    }
    results = [bench_size_spark(n, args.work, not args.no_ml, args.timeout) for n in sizes]
    meta["total_s"] = round(time.perf_counter() - t0, 1)
    out.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "results": results}, indent=1) + "\n"
    )
    duck_file = DEFAULT_OUT.with_suffix(".json")
    duck = json.loads(duck_file.read_text())["results"] if duck_file.exists() else []
    md = to_markdown_spark(results, meta, duck)
    out.with_suffix(".md").write_text(md)
    print("\n" + md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
