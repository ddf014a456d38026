"""The short accuracy summary printed after a run (read-only on the warehouse)."""

from __future__ import annotations

from pathlib import Path

import duckdb

SUMMARY_SQL = """
with latest as (
    select source, max(run_id) as run_id from ml.backtest_metrics group by source
)
select m.source, m.split, m.cutoff::varchar as cutoff, m.model, m.horizon,
       m.mae, m.rmse, m.n, m.noise_floor_mae
from ml.backtest_metrics as m
join latest using (source, run_id)
order by m.source, m.horizon, m.mae
"""


def print_summary(warehouse: Path) -> None:
    print(f"\nWarehouse: {warehouse}")
    if not warehouse.exists():
        print("  (no warehouse yet: run `make run`)")
        return
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = {
            f"{s}.{t}"
            for s, t in con.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        }
        if "ml.backtest_metrics" not in tables:
            print("  (no backtest metrics yet)")
            return
        sample = dict(
            con.execute(
                "select source, bool_and(source_file like '%/sample/%') "
                "from raw.source_files group by source"
            ).fetchall()
        )
        rows = con.execute(SUMMARY_SQL).fetchall()
    finally:
        con.close()
    current = None
    for source, split, cutoff, model, horizon, mae, rmse, n, floor in rows:
        if source != current:
            current = source
            kind = (
                "GENERATED SAMPLE: a smoke test of the pipeline, not accuracy on real crime"
                if sample.get(source)
                else "real input"
            )
            print(f"\n{source} — out of sample, split '{split}' (test from {cutoff}) — {kind}")
            print(f"  noise floor (Poisson, λ = trailing 28-day mean): MAE {floor:.3f}")
            print(f"  {'model':<24}{'h':>3}{'MAE':>8}{'RMSE':>8}{'n':>9}")
        print(f"  {model:<24}{horizon:>3}{mae:>8.3f}{rmse:>8.3f}{n:>9}")
