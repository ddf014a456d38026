"""The short accuracy summary printed after a run (read-only on the warehouse or a published
copy). It reads the serving contract's ``*_latest`` models (dbt_project/models/serving/), which
hold the "latest run per source" rule."""

from __future__ import annotations

from pathlib import Path

import duckdb

SUMMARY_SQL = """
select m.source, m.split, m.cutoff::varchar as cutoff, m.model, m.horizon,
       m.mae, m.rmse, m.n, m.noise_floor_mae
from serving.backtest_metrics_latest as m
where m.split = 'test' and m.horizon = 1
order by m.source, m.horizon, m.mae
"""


#: the status of each source in its latest ML run (forecast, or skipped and why)
STATUS_SQL = """
select source, status, skipped_reason, test_cutoff::varchar, cutoff_note, run_id
from serving.source_status_latest
order by source
"""


FRANCE_SQL = """
with pooled as (
    select m.* from serving.france_backtest_metrics_latest as m where m.horizon is null
)
select
    p.dataset, p.model, p.mae, b.mae as last_value_mae, p.selected,
    p.validation_mae > b.validation_mae as worse_on_validation
from pooled as p join pooled as b on p.dataset = b.dataset and b.model = 'last_value'
where p.model = 'last_value' or p.selected
order by p.dataset, p.model
"""

SAOPAULO_SQL = """
select model, log_loss, top1, log_loss_vs_prior
from serving.saopaulo_metrics_latest
where model in ('prior', 'freq_neighbourhood_period', 'xgboost')
order by log_loss desc
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
        status = (
            {r[0]: r[1:] for r in con.execute(STATUS_SQL).fetchall()}
            if "serving.source_status_latest" in tables
            else {}
        )
        rows = (
            con.execute(SUMMARY_SQL).fetchall()
            if "serving.backtest_metrics_latest" in tables
            else []
        )
        if not rows and not status:  # no run yet, or no serving models built
            print("  (no backtest metrics yet)")
            return
        sample = dict(
            con.execute(
                "select source, bool_and(source_file like '%/sample/%') "
                "from raw.source_files group by source"
            ).fetchall()
        )
        france = (
            con.execute(FRANCE_SQL).fetchall()
            if "serving.france_backtest_metrics_latest" in tables
            else []
        )
        saopaulo = (
            con.execute(SAOPAULO_SQL).fetchall()
            if "serving.saopaulo_metrics_latest" in tables
            else []
        )
        inputs = {
            name: con.execute(
                f"select coalesce(bool_and(source_file like '%/sample/%'), true) from {table}"
            ).fetchone()[0]
            for name, table in (
                ("france", "raw.france_regional"),
                ("saopaulo", "raw.saopaulo_source_files"),
            )
            if table in tables
        }
    finally:
        con.close()
    skipped = {src: st for src, st in status.items() if st[0] == "skipped"}
    for source, (_st, reason, _cutoff, note, run_id) in skipped.items():
        # older runs' figures of a skipped source would describe data it no longer has
        print(f"\n{source} — not forecast in the latest ML run ({run_id})")
        print(f"  {reason}" + (f" ({note})" if note else ""))
    current = None
    for source, split, cutoff, model, horizon, mae, rmse, n, floor in rows:
        if source in skipped:
            continue
        if source != current:
            current = source
            kind = (
                "GENERATED SAMPLE: a smoke test of the pipeline, not accuracy on real crime"
                if sample.get(source)
                else "real input"
            )
            print(f"\n{source} — out of sample, split '{split}' (test from {cutoff}) — {kind}")
            note = status.get(source, (None,) * 5)[3]
            if note:
                print(f"  note: {note}")
            print(
                "  Poisson reference (median of Poisson(trailing 28-day mean); a model, "
                f"not a floor): MAE {floor:.3f}"
            )
            print(f"  {'model':<24}{'h':>3}{'MAE':>8}{'RMSE':>8}{'n':>9}")
        print(f"  {model:<24}{horizon:>3}{mae:>8.3f}{rmse:>8.3f}{n:>9}")
    if france:
        kind = "GENERATED SAMPLE" if inputs.get("france", True) else "input as configured"
        print(f"\nfrance — annual rate per 100k, pooled over test years — {kind}")
        print(f"  {'dataset':<18}{'model':<22}{'MAE':>8}{'vs last_value':>15}")
        for dataset, model, mae, last, selected, worse in france:
            # the chosen model is the headline; last_value is always scored as the reference
            # but selectable only when the run's model list has it, so the choice can be
            # worse than last_value on the validation years: say so
            flag = "  chosen on validation" if selected else ""
            if flag and worse:
                flag += " — WORSE than last_value on validation"
            print(f"  {dataset:<18}{model:<22}{mae:>8.2f}{100 * (mae / last - 1):>+14.1f}%{flag}")
    if saopaulo:
        kind = "GENERATED SAMPLE" if inputs.get("saopaulo", True) else "input as configured"
        print(f"\nsaopaulo — place type of a phone theft, held-out 25 %, log loss — {kind}")
        for model, log_loss, top1, vs_prior in saopaulo:
            print(f"  {model:<36}{log_loss:>8.3f}  top-1 {top1:.3f}  vs prior {vs_prior:+.1%}")
