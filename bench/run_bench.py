"""Real-data benchmark: the same loaders, dbt models and ml/ code a user runs, on the public
extracts in ../shared/data (or CRIMECAST_DATA). Prints the tables and writes
bench/results.json and bench/results.md.

Every number is out of sample on a named split, beside naive baselines and the Poisson
noise floor. Warehouses are kept under bench/work/ so anyone can recompute with SQL.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
DATA = Path(os.environ.get("CRIMECAST_DATA", REPO.parent / "shared" / "data"))
WORK = BENCH / "work"

# name, source mapping, input file (relative to DATA), cutoff (None: last 56 days), description
INCIDENT_SETS = [
    (
        "boston_larceny_2016_2018",
        "boston",
        "boston/crime_2016_2018_larceny.csv",
        "2018-06-01",
        "Boston larceny, 12 districts, test 2018-06-01 … last full day, one step ahead",
    ),
    (
        "houston_2010",
        "houston",
        "houston/crime_2010_jan_aug.csv",
        None,
        "Houston Jan–Aug 2010, district = leading digits of beat × offense, last 56 days",
    ),
]


def run_incident_set(name: str, source: str, path: Path, cutoff: str | None) -> list[dict]:
    import dagster as dg
    import duckdb

    warehouse = WORK / name / "crimecast.duckdb"
    if warehouse.exists():
        warehouse.unlink()
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    os.environ["CRIMECAST_WAREHOUSE"] = str(warehouse)
    os.environ["CRIMECAST_SOURCES"] = source
    os.environ[f"CRIMECAST_INPUT_{source.upper()}"] = str(path)
    if cutoff:
        os.environ["CRIMECAST_CUTOFF"] = cutoff
    else:
        os.environ.pop("CRIMECAST_CUTOFF", None)

    from orchestration.assets.raw import raw_incidents
    from orchestration.definitions import ALL_ASSETS, build_resources

    selection = dg.AssetSelection.assets(raw_incidents).downstream().upstream()
    t0 = time.perf_counter()
    result = dg.materialize(ALL_ASSETS, selection=selection, resources=build_resources(warehouse))
    if not result.success:
        raise SystemExit(f"benchmark run {name} failed")
    seconds = time.perf_counter() - t0
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "select model, horizon, mae, rmse, n, noise_floor_mae, cutoff::varchar "
            "from ml.backtest_metrics where source = ? order by horizon, mae",
            [source],
        ).fetchall()
    finally:
        con.close()
    return [
        {
            "dataset": name,
            "split": f"test from {cut}",
            "model": model,
            "horizon": horizon,
            "mae": round(mae, 4),
            "rmse": round(rmse, 4),
            "n": n,
            "noise_floor_mae": round(floor, 4),
            "seconds": round(seconds, 1),
        }
        for model, horizon, mae, rmse, n, floor, cut in rows
    ]


def markdown(results: list[dict]) -> str:
    lines = []
    for dataset in dict.fromkeys(r["dataset"] for r in results):
        rows = [r for r in results if r["dataset"] == dataset]
        keys = [k for k in rows[0] if k not in ("dataset", "seconds")]
        lines += [f"**{dataset}**", "", "| " + " | ".join(keys) + " |"]
        lines.append("|" + "---|" * len(keys))
        lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    if not DATA.is_dir():
        print(f"no real data at {DATA}: set CRIMECAST_DATA to the folder of the extracts")
        return 2
    results: list[dict] = []
    for name, source, rel, cutoff, description in INCIDENT_SETS:
        print(f"\n== {name}: {description}", flush=True)
        rows = run_incident_set(name, source, DATA / rel, cutoff)
        print(f"   noise floor (Poisson, λ = trailing 28-day mean): {rows[0]['noise_floor_mae']}")
        for r in rows:
            print(
                f"   {r['model']:<22} h={r['horizon']}  MAE {r['mae']:.4f}  "
                f"RMSE {r['rmse']:.4f}  n={r['n']}"
            )
        results += rows
    for module in ("france", "saopaulo"):
        bench_file = BENCH / f"{module}.py"
        if bench_file.exists():
            print(f"\n== {module}", flush=True)
            mod = __import__(f"bench.{module}", fromlist=["run"])
            results = mod.run(results)
    (BENCH / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (BENCH / "results.md").write_text(markdown(results))
    print(f"\nwrote {BENCH / 'results.json'} and {BENCH / 'results.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
