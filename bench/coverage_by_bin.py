"""Coverage of the champion's intervals by quartile of expected count, on a warehouse whose
marts are built (e.g. bench/work/<set>/crimecast.duckdb after `make bench`, or any `crimecast
run` warehouse): a reduced run of one source (a smaller zoo, all history), then the test-split
coverage per quartile with ONE calibration per model × horizon (the old rule) and with the
per-bin calibration the pipeline uses (ml/intervals.py). Bins and calibration from the
validation rows only.

    python bench/coverage_by_bin.py WAREHOUSE [--cutoff 2018-06-01] [--models a,b,c]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.backtest import BacktestPlan  # noqa: E402
from ml.features import holidays_from_seed  # noqa: E402
from ml.history import assess  # noqa: E402
from ml.intervals import add_intervals, calibrate, coverage, coverage_by_bin  # noqa: E402
from ml.pipeline import RunConfig, run_source  # noqa: E402

MODELS = "seasonal_naive_7,mean_7,mean_28,poisson_glm,hist_gbm,holt_winters,xgboost"


def by_bin(preds: pd.DataFrame) -> pd.DataFrame:
    by = ["split", "model", "horizon"]
    cov = pd.concat(
        [coverage(preds, by=by).assign(bin="all"), coverage_by_bin(preds, by=by)],
        ignore_index=True,
    )
    return cov[cov["split"] == "test"]


def table(cov: pd.DataFrame, values: str = "coverage") -> pd.DataFrame:
    return cov.pivot_table(index=["horizon", "nominal"], columns="bin", values=values).round(3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("warehouse")
    ap.add_argument("--cutoff", default=None, help="test cutoff (default: the last 56 days)")
    ap.add_argument("--models", default=MODELS)
    args = ap.parse_args()
    con = duckdb.connect(args.warehouse, read_only=True)
    mart = con.execute("select * from marts.daily_features order by series_id, date").df()
    seed = con.execute("select country, date from seeds.holidays").df()
    countries = dict(con.execute("select source, country from raw.sources").fetchall())
    con.close()
    source = str(mart["source"].iloc[0])
    mart = mart[mart["source"] == source]
    known = mart[mart["incident_count"].notna()]
    plan = BacktestPlan()  # all history, as the benchmark's full profile
    cutoff = pd.Timestamp(args.cutoff).date() if args.cutoff else None
    first, last = (pd.Timestamp(known["date"].agg(f)).date() for f in ("min", "max"))
    status = assess(source, first, last, plan.covering(28), cutoff=cutoff)
    print(status.line())
    if not status.forecast:
        return 2
    config = RunConfig(
        run_id="coverage_by_bin",
        test_cutoff=status.test_cutoff,
        profile="full",
        models=args.models.split(","),
        plan=plan,
    )
    t0 = time.perf_counter()
    holidays = holidays_from_seed(seed, countries.get(source))
    frames, summary = run_source(source, mart, holidays, config, log=lambda _m: None)
    print(f"run_source {time.perf_counter() - t0:.0f} s; champions {summary['champions']}")
    bp = frames["backtest_predictions"].rename(columns={"date": "ds"})
    ic = frames["interval_coverage"]
    after = ic[(ic["split"] == "test") & (ic["model"] == "champion")]
    after = after[after["level"] == "area_category"]
    own = bp[bp["model"] != "champion"]
    one = calibrate(own[own["split"] == "cv"], n_bins=1)  # the old rule, same validation rows
    champ = bp[bp["model"] == "champion"].drop(columns="model")
    before = add_intervals(champ.rename(columns={"champion_model": "model"}), one)
    before = by_bin(before.assign(model="champion"))
    pd.set_option("display.width", 200)
    print("\nBEFORE: one φ / τ per model × horizon\n", table(before))
    print("\nAFTER: φ / τ per quartile of validation expected count\n", table(after))
    print("\ntest rows per bin\n", table(after, "n"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
