"""Real-data benchmark of the São Paulo place-type classifier (issue #6).

Runs exactly what a user runs, in a scratch warehouse: the loader
(ingest/saopaulo.py) on the real file, dbt build of the São Paulo models, then
ml/saopaulo/ (split, baselines, ablation, calibration, held-out metrics).

    .venv/bin/python bench/saopaulo.py            # prints metrics and ablation tables

The file is ``$CRIMECAST_SAOPAULO_DATA`` (file, folder, glob or URL), by default
``../shared/data/saopaulo/celulares_2023_tratada.csv``. ``run(results)`` appends one row per
model (dataset ``saopaulo``; the prior is ``prior``) to ``results`` and returns ``results``
(as bench/run_bench.py expects: ``results = mod.run(results)``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_DATA = REPO.parent / "shared" / "data" / "saopaulo" / "celulares_2023_tratada.csv"
METRICS = ["log_loss", "brier", "top1", "top3", "macro_f1", "n"]


def data_spec() -> str:
    return os.environ.get("CRIMECAST_SAOPAULO_DATA", "").strip() or str(DEFAULT_DATA)


def _dbt(warehouse: Path, work: Path) -> None:
    exe = Path(sys.executable).parent / "dbt"
    cmd = [
        str(exe if exe.exists() else "dbt"),
        "build",
        "--quiet",
        "--select",
        "+path:models/marts/saopaulo",
        "--project-dir",
        str(REPO / "dbt_project"),
        "--profiles-dir",
        str(REPO / "dbt_project"),
        "--target-path",
        str(work / "target"),
        "--log-path",
        str(work / "logs"),
    ]
    env = {**os.environ, "CRIMECAST_WAREHOUSE": str(warehouse)}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"dbt build failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}")


def evaluate(spec: str | None = None, keep_dir: Path | None = None, log=print):
    """Load → dbt → model in a scratch warehouse; returns (PlaceTypeResult, seconds)."""
    import duckdb

    from ingest.saopaulo import load_saopaulo
    from ml.saopaulo import PlaceTypeConfig, load_records, result_frames
    from ml.saopaulo import run as fit_and_score
    from ml.tables import DuckDBTables
    from orchestration.config import MIN_CELL_RECORDS

    started = time.perf_counter()
    work = Path(keep_dir or tempfile.mkdtemp(prefix="crimecast-bench-saopaulo-"))
    work.mkdir(parents=True, exist_ok=True)
    warehouse = work / "crimecast.duckdb"
    try:
        con = duckdb.connect(str(warehouse))
        try:
            loaded = load_saopaulo(
                con,
                spec or data_spec(),
                sample_dir=work / "sample",
                download_dir=work / "downloads",
            )
        finally:
            con.close()
        log(f"loaded {loaded.rows} rows from {loaded.files}")
        _dbt(warehouse, work)
        con = duckdb.connect(str(warehouse))
        try:
            tables = DuckDBTables(con)
            cfg = PlaceTypeConfig(min_cell_records=MIN_CELL_RECORDS)
            result = fit_and_score(load_records(tables), cfg, log=log)
            tables.append(result_frames(result, run_id="bench"))
        finally:
            con.close()
    finally:
        if keep_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    return result, time.perf_counter() - started


def run(results: list) -> list[dict]:
    """Append one row per model (dataset 'saopaulo') to ``results`` and return it."""
    result, seconds = evaluate(log=lambda _m: None)
    rows = []
    for r in result.metrics.to_dict("records"):
        row = {"dataset": "saopaulo", "model": r["model"]}
        row.update({k: (int(r[k]) if k == "n" else round(float(r[k]), 5)) for k in METRICS})
        row["log_loss_vs_prior"] = round(float(r["log_loss_vs_prior"]), 5)
        row["seconds"] = round(seconds, 1)
        rows.append(row)
    results.extend(rows)
    return results


def main() -> None:
    import pandas as pd

    keep = os.environ.get("CRIMECAST_BENCH_KEEP", "").strip()
    result, seconds = evaluate(keep_dir=Path(keep) if keep else None)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    print("\nHeld-out metrics (random 25 % test split, stratified, seed 42):")
    print(result.metrics.round(4).to_markdown(index=False))
    print("\nAblation (validation split; test_log_loss for information only):")
    cols = [
        "variant",
        "val_log_loss",
        "delta_val_log_loss",
        "delta_noise_sd",
        "z",
        "kept",
        "test_log_loss",
    ]
    print(result.ablation[cols].round(4).to_markdown(index=False))
    info = {k: v for k, v in result.info.items() if k != "baselines"}
    print(
        f"\n{info}\nbaseline alphas: "
        f"{ {k: v['alpha'] for k, v in result.info['baselines'].items()} }"
    )
    print(f"total {seconds:.0f} s")


if __name__ == "__main__":
    main()
