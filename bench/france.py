"""France benchmark: the real SSMSI files through the same loader, dbt models and ml/annual.py.

    .venv/bin/python bench/france.py            # prints the table (run_bench.py calls run())

``run(results)`` appends one row per dataset and model to ``results`` and returns it:
datasets ``france_reg_h1``, ``france_reg_h1_3``, ``france_dep_h1``, ``france_dep_h1_3``;
fields dataset, split, model, mae, rmse, mape (%, over actual > 0), mae_count, n, selected
(chosen on validation years before the test years), validation_mae, seconds; on the rows of
the selected model and last_value also coverage_80 / coverage_95 (of the intervals calibrated
on years ≤ the train end, on the test years), max_hi95_ratio (largest 95 % high over the
origin's rate, both + 1) and per_indicator ({indicator: {mae, level, rel_mae}}: the test MAE
of that indicator, its mean actual rate and their ratio in %, since indicators differ in scale).
Datasets ``france_reg_forecast`` / ``france_dep_forecast``: the forecast to 2030 and how far
its 95 % highs reach (:func:`forecast_bands`).
Data folder: ``CRIMECAST_FRANCE_DATA``, else ``$CRIMECAST_DATA/france``, else
../shared/data/france beside the repo. Scratch warehouse: bench/work/france/crimecast.duckdb.
"""

from __future__ import annotations

import math
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
    from ml.tables import DuckDBTables

    t0 = time.perf_counter()
    warehouse = REPO / "bench" / "work" / "france" / "crimecast.duckdb"
    build_warehouse(warehouse, data_dir())
    con = duckdb.connect(str(warehouse))
    try:
        features = annual.load_features(DuckDBTables(con))
        run_id = time.strftime("bench-france-%Y%m%dT%H%M%S")
        preds, metrics, _ = annual.run_backtests(features, run_id, intervals=True)
        bands = [forecast_bands(features, level) for level in annual.LEVEL_DATASET]
    finally:
        con.close()
    seconds = round(time.perf_counter() - t0, 1)
    pooled = metrics.loc[metrics["horizon"].isna()]
    by_indicator = per_indicator(preds)
    for row in pooled.itertuples():
        extra = {}
        if not math.isnan(getattr(row, "coverage_80", math.nan)):
            extra = {
                "coverage_80": round(float(row.coverage_80), 4),
                "coverage_95": round(float(row.coverage_95), 4),
                "max_hi95_ratio": round(float(row.max_hi95_ratio), 2),
                "per_indicator": by_indicator[(row.dataset, row.model)],
            }
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
                **extra,
            }
        )
        print(
            f"   {row.dataset:<16} {row.model:<24} MAE {row.mae:8.2f}  RMSE {row.rmse:8.2f}  "
            f"MAPE {row.mape:6.2f} %  MAE counts {row.mae_count:9.1f}  n={row.n}"
            + ("  (selected on validation)" if row.selected else "")
            + (
                f"  cover80 {extra['coverage_80']:.3f} cover95 {extra['coverage_95']:.3f} "
                f"max hi95/last {extra['max_hi95_ratio']:.1f}"
                if extra
                else ""
            ),
            flush=True,
        )
    for row in bands:
        results.append(row)
        print(
            f"   {row['dataset']:<16} {row['model']:<24} {row['split']}: 95 % high / last value "
            f"max {row['max_hi95_ratio']:.1f} ({row['max_series']}), median "
            f"{row['median_hi95_ratio']:.2f}",
            flush=True,
        )
    for line in indicator_table([r for r in results if r["dataset"].startswith("france")]):
        print("   " + line)
    return results


def forecast_bands(features, level: str, to_year: int = 2030) -> dict:
    """The operational forecast of ``level`` to ``to_year`` (every model; chosen on the last
    validation years, :func:`ml.annual.forecast`): how far its last 95 % highs reach, as
    (hi_95 + 1) / (last observed rate + 1) over the series, and the widest series."""
    from ml import annual

    t0 = time.perf_counter()
    fc, _, _ = annual.forecast(features, level, to_year, models=None)
    end = fc.loc[fc["year"] == to_year]
    ratio = (end["forecast_hi_95"] + 1) / (end["last"] + 1)
    widest = end.loc[ratio.idxmax()]
    return {
        "dataset": f"{annual.LEVEL_DATASET[level]}_forecast",
        "split": f"from {int(fc['as_of_year'].max())} to {to_year}, no actuals",
        "model": str(fc["model"].iloc[0]),
        "n": int(len(end)),
        "max_hi95_ratio": round(float(ratio.max()), 2),
        "median_hi95_ratio": round(float(ratio.median()), 2),
        "max_series": f"{widest['series_id']}: last {widest['last']:.1f}, "
        f"{to_year} {widest['forecast']:.1f} [95 % high {widest['forecast_hi_95']:.1f}]",
        "seconds": round(time.perf_counter() - t0, 1),
    }


def per_indicator(preds) -> dict[tuple[str, str], dict[str, dict[str, float]]]:
    """Per (dataset, model), per indicator: test MAE of the rate, mean actual rate, and
    their ratio in % (the MAE relative to the indicator's level)."""
    err = preds.assign(abs_err=(preds["prediction"] - preds["actual"]).abs())
    out: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    for (dataset, model), g in err.groupby(["dataset", "model"]):
        stats = g.groupby("indicator").agg(mae=("abs_err", "mean"), level=("actual", "mean"))
        out[(dataset, model)] = {
            ind: {
                "mae": round(float(r.mae), 3),
                "level": round(float(r.level), 3),
                "rel_mae": round(100.0 * float(r.mae) / float(r.level), 2) if r.level > 0 else None,
            }
            for ind, r in stats.iterrows()
        }
    return out


def indicator_table(rows: list[dict]) -> list[str]:
    """Markdown: per indicator, test MAE and MAE / mean level (%) of last_value and of the
    model chosen on validation, per France dataset (rows with ``per_indicator``)."""
    datasets = [
        d
        for d in dict.fromkeys(r["dataset"] for r in rows)
        if any(r["dataset"] == d and r.get("selected") and "per_indicator" in r for r in rows)
    ]
    if not datasets:
        return []
    pick = {}
    for d in datasets:
        sel = next(r for r in rows if r["dataset"] == d and r.get("selected"))
        lv = next(r for r in rows if r["dataset"] == d and r["model"] == "last_value")
        pick[d] = (lv, sel)
    indicators = sorted({i for lv, sel in pick.values() for i in sel["per_indicator"]})

    def cell(row, ind):
        v = row["per_indicator"].get(ind)
        if v is None:
            return ""
        rel = "" if v["rel_mae"] is None else f" ({v['rel_mae']:.1f} %)"
        return f"{v['mae']:.2f}{rel}"

    head = " | ".join(f"{d}: last value / {pick[d][1]['model']}" for d in datasets)
    out = [
        "Per indicator (test MAE of the rate per 100k, and MAE / mean rate of the indicator in "
        "the test years, %): last value / the model chosen on validation",
        "",
        f"| indicator | {head} |",
        "|---|" + "---:|" * len(datasets),
    ]
    for ind in indicators:
        cells = [f"{cell(pick[d][0], ind)} / {cell(pick[d][1], ind)}" for d in datasets]
        out.append(f"| {ind} | " + " | ".join(cells) + " |")
    out.append("")
    return out


def main() -> int:
    run([])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
