"""France benchmark: the real SSMSI files through the same loader, dbt models and ml/annual.py.

    .venv/bin/python bench/france.py            # prints the table (run_bench.py calls run())

``run(results)`` appends one row per dataset and model to ``results`` and returns it:
datasets ``france_reg_h1``, ``france_reg_h1_3``, ``france_dep_h1``, ``france_dep_h1_3``;
fields dataset, split, model, mae, rmse, mape (%, over actual > 0), mae_count, n, selected
(chosen on validation years before the test years), validation_mae, seconds.
Data folder: ``CRIMECAST_FRANCE_DATA``, else ``$CRIMECAST_DATA/france``, else
../shared/data/france beside the repo. Scratch warehouse: bench/work/france/crimecast.duckdb.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DBT_SELECT = "france_regions france_departements +path:models/marts/france"


def data_dir() -> Path:
    if os.environ.get("CRIMECAST_FRANCE_DATA"):
        return Path(os.environ["CRIMECAST_FRANCE_DATA"])
    if os.environ.get("CRIMECAST_DATA"):
        return Path(os.environ["CRIMECAST_DATA"]) / "france"
    return REPO.parent / "shared" / "data" / "france"


def build_warehouse(warehouse: Path, data: Path) -> None:
    """Load the real files (ingest/france.py), then dbt build the France models."""
    import duckdb

    from ingest.france import load_france

    warehouse.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(warehouse))
    try:
        spec = str(data)
        load_france(
            con,
            {"regional": spec, "departmental": spec},
            sample_dir=warehouse.parent / "sample" / "france",
            download_dir=warehouse.parent / "downloads",
        )
    finally:
        con.close()
    dbt = Path(sys.executable).with_name("dbt")
    env = {**os.environ, "CRIMECAST_WAREHOUSE": str(warehouse)}
    cmd = [str(dbt) if dbt.exists() else "dbt", "build", "--quiet", "--select", DBT_SELECT]
    cmd += ["--profiles-dir", str(REPO / "dbt_project"), "--project-dir", str(REPO / "dbt_project")]
    cmd += ["--target-path", str(warehouse.parent / "target")]
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"dbt build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")


def run(results: list) -> list[dict]:
    """Append the France rows to ``results`` (and return it)."""
    import duckdb

    from ml import annual

    t0 = time.perf_counter()
    warehouse = REPO / "bench" / "work" / "france" / "crimecast.duckdb"
    build_warehouse(warehouse, data_dir())
    con = duckdb.connect(str(warehouse))
    try:
        features = annual.load_features(con)
        run_id = time.strftime("bench-france-%Y%m%dT%H%M%S")
        _, metrics, _ = annual.run_backtests(features, run_id)
    finally:
        con.close()
    seconds = round(time.perf_counter() - t0, 1)
    pooled = metrics.loc[metrics["horizon"].isna()]
    for row in pooled.itertuples():
        results.append(
            {
                "dataset": row.dataset,
                "split": f"train ≤ {row.train_end}, test {row.test_years}",
                "model": row.model,
                "mae": round(float(row.mae), 4),
                "rmse": round(float(row.rmse), 4),
                "mape": round(float(row.mape), 4),
                "mae_count": round(float(row.mae_count), 4),
                "n": int(row.n),
                "selected": bool(row.selected),
                "validation_mae": round(float(row.validation_mae), 4),
                "seconds": seconds,
            }
        )
        print(
            f"   {row.dataset:<16} {row.model:<24} MAE {row.mae:8.2f}  RMSE {row.rmse:8.2f}  "
            f"MAPE {row.mape:6.2f} %  MAE counts {row.mae_count:9.1f}  n={row.n}"
            + ("  (selected on validation)" if row.selected else ""),
            flush=True,
        )
    return results


def main() -> int:
    run([])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
