"""Real-data benchmark: the same loaders, dbt models and ml/ code a user runs, on the public
extracts in ../shared/data (or CRIMECAST_DATA). Prints the tables and writes
bench/results.json and bench/results.md. ``--france``: only the France part (its rows are
replaced, the others kept).

Every number is out of sample on a named split, beside naive baselines and the model-based
Poisson reference. Warehouses are kept under bench/work/ so anyone can recompute with SQL.
"""

from __future__ import annotations

import argparse
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
        "Boston larceny 2016–2018, 12 districts, test from 2018-06-01 to the last full day",
    ),
    (
        "houston_2010",
        "houston",
        "houston/crime_2010_jan_aug.csv",
        None,
        "Houston Jan–Aug 2010, district = leading digits of beat × offense, last 56 days",
    ),
]


from bench import peers  # noqa: E402
from bench.compare import compare  # noqa: E402


def run_incident_set(name: str, source: str, path: Path, cutoff: str | None) -> list[dict]:
    import dagster as dg
    import duckdb

    warehouse = WORK / name / "crimecast.duckdb"
    if warehouse.exists():
        warehouse.unlink()
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    from orchestration.config import check_ml, ml_env_values
    from orchestration.definitions import ALL_ASSETS, build_resources
    from orchestration.defs.incidents.ml import ml_run_config
    from orchestration.defs.incidents.raw import raw_incidents
    from orchestration.resources import RunDefaults

    # this set's settings as resources and run config (nothing written into the environment):
    # the one source and its file, the whole model zoo on all history (docs/forecasting.md,
    # "Profiles"), the set's cutoff (None: the default last 56 days)
    resources = {
        **build_resources(warehouse),
        "run_defaults": RunDefaults(sources=[source], inputs={source: str(path)}),
    }
    ml = check_ml(
        **{
            **ml_env_values(),
            "cutoff": cutoff or "",
            "cutoffs": {},
            "profile": "full",
            "train_days": None,
        }
    )
    # the incident graph only: no published copy (it would pull in France and São Paulo)
    incident = dg.AssetSelection.assets(raw_incidents).downstream() - dg.AssetSelection.groups(
        "serving"
    )
    selection = incident.upstream()
    t0 = time.perf_counter()
    result = dg.materialize(
        ALL_ASSETS,
        selection=selection,
        resources=resources,
        run_config={"ops": ml_run_config(ml)},
        partition_key=source,  # the raw incident assets: one partition per city
    )
    if not result.success:
        raise SystemExit(f"benchmark run {name} failed")
    seconds = time.perf_counter() - t0
    ml_seconds = None
    for ev in result.all_events:
        if ev.step_key == "ml_forecasts" and ev.is_step_success:
            ml_seconds = round(ev.event_specific_data.duration_ms / 1000, 1)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "select model, horizon, mae, rmse, n, noise_floor_mae, coverage_80, coverage_95, "
            "mae_vs_mean_28, is_source_champion, n_series_champion, "
            "(select min(cutoff)::varchar from ml.backtest_metrics b "
            " where b.run_id = l.run_id and b.split = 'test') as cut "
            "from ml.leaderboard l where source = ? and split = 'test' "
            "and run_id = (select max(run_id) from ml.leaderboard where source = ?) "
            "order by horizon, mae, model",
            [source, source],
        ).fetchall()
        champions = dict(
            con.execute(
                "select horizon, string_agg(model || ' ×' || n, ', ' order by n desc) from "
                "(select horizon, model, count(*) as n from ml.champions where source = ? "
                " and run_id = (select max(run_id) from ml.champions where source = ?) "
                " group by all) group by horizon",
                [source, source],
            ).fetchall()
        )
    finally:
        con.close()
    compared, facts = compare(warehouse, source, with_peers=peers.available())
    # the intervals of each model over all its test rows (not those of a window or of the
    # common target days, which share the model and horizon)
    by_key = {(r["model"], r["horizon"]): r for r in compared if _is_main(r)}
    out = []
    for model, horizon, mae, rmse, n, floor, c80, c95, rel, is_champ, n_champ, cut in rows:
        row = {
            "dataset": name,
            "split": f"test from {cut}",
            "model": model,
            "horizon": horizon,
            "mae": round(mae, 4),
            "rmse": round(rmse, 4),
            "n": n,
            "noise_floor_mae": round(floor, 4),
            "mae_vs_mean_28": round(rel, 4),
            "n_series_champion": n_champ,
        }
        if c80 is not None and c95 is not None and c80 == c80:  # models with intervals
            row["coverage_80"] = round(c80, 4)
            row["coverage_95"] = round(c95, 4)
        if model == "champion":
            row["champions"] = champions.get(horizon, "")
        elif is_champ:
            row["source_champion"] = True
        row.update(_interval_fields(by_key.get((model, horizon), {})))
        row["seconds"] = round(seconds, 1)
        row["ml_seconds"] = ml_seconds
        out.append(row)
    split = out[0]["split"] if out else ""
    ours = {(r["model"], r["horizon"]) for r in out}
    # derived median baselines, the NB reference, the peers; every model again on the common
    # target days and per 28-day test window
    for r in compared:
        if _is_main(r) and (r["model"], r["horizon"]) in ours:
            continue
        extra = {"dataset": name, "split": split, "model": r["model"], "horizon": r["horizon"]}
        extra.update({k: r[k] for k in ("target_days", "window", "reference") if k in r})
        extra.update({"mae": r["mae"], "n": r["n"], "peer": r["peer"]})
        extra.update(_interval_fields(r))
        out.append(extra)
    if out:
        out[0]["comparison"] = facts
    return out


def _interval_fields(r: dict) -> dict:
    keys = ("mae_lo", "mae_hi", "diff_baseline", "diff_baseline_lo", "diff_baseline_hi")
    keys += ("diff_peer", "diff_peer_lo", "diff_peer_hi", "diff_lo", "diff_hi")
    return {k: r[k] for k in keys if k in r}


def _is_main(r: dict) -> bool:
    """A row over all test rows of its horizon (not the common target days, not a window)."""
    return "target_days" not in r and "window" not in r


def markdown(results: list[dict]) -> str:
    lines = []
    for dataset in dict.fromkeys(r["dataset"] for r in results):
        rows = [r for r in results if r["dataset"] == dataset]
        keys = list(dict.fromkeys(k for r in rows for k in r))
        skip = ("dataset", "seconds", "comparison", "champions", "per_indicator")
        keys = [k for k in keys if k not in skip]
        lines += [f"**{dataset}**", "", "| " + " | ".join(keys) + " |"]
        lines.append("|" + "---|" * len(keys))
        lines += ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows]
        lines.append("")
    from bench.france import indicator_table

    lines += indicator_table([r for r in results if r["dataset"].startswith("france")])
    return "\n".join(lines)


README = REPO / "README.md"


def _f(value, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def readme_summary(results: list[dict]) -> str:
    """Compact tables of ``results`` for the README (the full ones are bench/results.md)."""
    out: list[str] = []
    incident = [d for d, *_ in INCIDENT_SETS if any(r["dataset"] == d for r in results)]
    for name, _source, rel, _cut, description in INCIDENT_SETS:
        if name not in incident:
            continue
        every = [r for r in results if r["dataset"] == name]
        rows = [r for r in every if _is_main(r)]
        hs = sorted({r["horizon"] for r in rows})
        by = {(r["model"], r["horizon"]): r for r in rows}
        # ties in MAE keep the order of results.json (a set's order changes from run to run)
        order = sorted(
            dict.fromkeys(r["model"] for r in rows),
            key=lambda m: by.get((m, hs[0]), {}).get("mae", 9e9),
        )
        facts = next((r["comparison"] for r in rows if "comparison" in r), {})
        out += [
            f"**{description}** (`{rel}`, {rows[0]['split']}; MAE of daily counts on the test "
            "split with its 95 % day-block bootstrap interval; coverage of the 80 % / 95 % "
            "intervals; *peer* = another open-source tool, same rows)",
            "",
            "| model | "
            + " | ".join(f"MAE h={h} [95 % CI]" for h in hs)
            + " | "
            + " | ".join(f"cover 80/95 h={h}" for h in hs)
            + " |",
            "|---|" + "---:|" * (2 * len(hs)),
        ]
        for m in order:
            maes = []
            for h in hs:
                r = by.get((m, h), {})
                ci = f" [{r['mae_lo']:.3f}, {r['mae_hi']:.3f}]" if "mae_lo" in r else ""
                maes.append(_f(r.get("mae")) + ci)
            covs = []
            for h in hs:
                r = by.get((m, h), {})
                covs.append(
                    f"{r['coverage_80']:.3f} / {r['coverage_95']:.3f}" if "coverage_80" in r else ""
                )
            peer = any(by.get((m, h), {}).get("peer") for h in hs)
            label = f"**{m}**" if m == "champion" else (f"{m} *(peer)*" if peer else m)
            if any(by.get((m, h), {}).get("reference") for h in hs):
                label = (
                    f"*{m}: median of NB(trailing 28-day mean, φ from validation) — a "
                    "model-based reference, not a floor*"
                )
            out.append(f"| {label} | " + " | ".join(maes) + " | " + " | ".join(covs) + " |")
        refs = [_f(by.get(("mean_28", h), {}).get("noise_floor_mae")) for h in hs]
        out.append(
            "| *Poisson reference: the expected absolute error of the median if counts were "
            "Poisson(trailing 28-day mean) — model-based, not a floor* | "
            + " | ".join(refs)
            + " |"
            + " |" * len(hs)
        )
        out += _subset_lines(every, hs, facts)
        champs = "; ".join(
            f"h={h}: {by[('champion', h)].get('champions', '')}"
            for h in hs
            if ("champion", h) in by
        )
        out += ["", f"Champion per series (chosen on validation folds only): {champs}."]
        for label, key in (("baseline", "best_baseline"), ("peer", "best_peer")):
            diffs = []
            for h in hs:
                r = by.get(("champion", h), {})
                ref = facts.get(key, {}).get(str(h))
                if f"diff_{label}" in r and ref:
                    diffs.append(
                        f"h={h} vs {ref}: {r[f'diff_{label}']:+.3f} "
                        f"[{r[f'diff_{label}_lo']:+.3f}, {r[f'diff_{label}_hi']:+.3f}]"
                    )
            if diffs:
                how = (
                    "the median-point baseline with the lowest validation MAE"
                    if label == "baseline"
                    else "the peer with the lowest MAE on its validation window"
                )
                out.append(
                    f"Champion − best {label} ({how}; MAE difference, 95 % interval): "
                    + "; ".join(diffs)
                    + "."
                )
        if facts.get("peer_seconds"):
            secs = ", ".join(f"{k} {v} s" for k, v in facts["peer_seconds"].items())
            out.append(
                f"Wall time: crimecast's ML stage {rows[0].get('ml_seconds')} s; peers {secs} "
                "(validation + test)."
            )
        out.append("")
    france = [r for r in results if r["dataset"].startswith("france")]
    if france:
        out += [
            "**France, SSMSI** (rate per 100,000 inhabitants, all indicators × geographies; "
            "test years never seen in training)",
            "",
            "| dataset | split | last value MAE (MAPE %) | model chosen on validation | its test "
            "MAE (MAPE %) | vs last value | validation MAE: chosen / last value | test coverage "
            "80 / 95 % (chosen) |",
            "|---|---|---:|---|---:|---:|---:|---:|",
        ]
        # only the model chosen on the validation years is a headline: the best model on the
        # test years is picked with the test actuals (bench/results.json has every model)
        for d in dict.fromkeys(r["dataset"] for r in france):
            rows = [r for r in france if r["dataset"] == d]
            lv = next((r for r in rows if r["model"] == "last_value"), None)
            sel = next((r for r in rows if r.get("selected")), None)
            if sel is None or lv is None:
                continue
            worse = (
                " (worse than last value on validation)"
                if (sel.get("validation_mae") or 0) > (lv.get("validation_mae") or float("inf"))
                else ""
            )
            out.append(
                f"| {d} | {lv['split']} | {lv['mae']:.2f} ({lv['mape']:.1f}) | {sel['model']} | "
                f"{sel['mae']:.2f} ({sel['mape']:.1f}) | "
                f"{100 * (sel['mae'] / lv['mae'] - 1):+.1f} % | "
                f"{_f(sel.get('validation_mae'), 2)} / {_f(lv.get('validation_mae'), 2)}{worse} | "
                f"{_f(sel.get('coverage_80'), 2)} / {_f(sel.get('coverage_95'), 2)} |"
            )
        out.append("")
        for r in france:
            if "median_hi95_ratio" in r:
                out.append(
                    f"Forecast {r['dataset']} ({r['model']}, {r['split']}): the 95 % high of the "
                    f"last year is at most {r['max_hi95_ratio']:.1f} times the last observed "
                    f"rate (median {r['median_hi95_ratio']:.2f}; widest: {r['max_series']})."
                )
                out.append("")
        from bench.france import indicator_table

        out += indicator_table(france)
    sp = [r for r in results if r["dataset"] == "saopaulo"]
    if sp:
        out += [
            "**São Paulo phone thefts 2023** (place type, 10 classes; held-out 25 %, stratified)",
            "",
            "| model | log loss | vs prior | Brier | top-1 | top-3 | macro F1 |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        prior = next(r for r in sp if r["model"] == "prior")["log_loss"]
        for r in sp:
            out.append(
                f"| {r['model']} | {r['log_loss']:.4f} | "
                f"{100 * (r['log_loss'] / prior - 1):+.1f} % | "
                f"{r['brier']:.4f} | {r['top1']:.3f} | {r['top3']:.3f} | {_f(r.get('macro_f1'))} |"
            )
        out.append("")
    return "\n".join(out)


def _subset_lines(rows: list[dict], hs: list[int], facts: dict) -> list[str]:
    """README lines: the champion, the best baseline and the best peer on the target days
    every horizon predicts, and per 28-day test window (MAE [95 % CI])."""
    out = []
    parts = [("common", "the target days every horizon predicts", lambda r: r.get("target_days"))]
    windows = sorted({r["window"] for r in rows if "window" in r})
    parts += [(w, f"test window {w}", lambda r: r.get("window")) for w in windows]
    for key, label, get in parts:
        sub = {(r["model"], r["horizon"]): r for r in rows if get(r) == key}
        if not sub:
            continue
        cells = []
        for h in hs:
            names = ["champion"]
            names += [facts.get(k, {}).get(str(h)) for k in ("best_baseline", "best_peer")]
            got = [
                f"{m} {sub[(m, h)]['mae']:.3f} [{sub[(m, h)]['mae_lo']:.3f}, "
                f"{sub[(m, h)]['mae_hi']:.3f}]"
                for m in names
                if m and (m, h) in sub
            ]
            if got:
                cells.append(f"h={h} ({sub[('champion', h)]['n']} rows): " + ", ".join(got))
        if cells:
            out.append(f"On {label}: " + "; ".join(cells) + ".")
    if windows and facts.get("windows"):
        spans = ", ".join(f"{w}: {a} → {b}" for w, (a, b) in enumerate(facts["windows"], 1))
        out.append(f"Test windows (target days): {spans}.")
    return out


def update_readme(summary: str, marker: str = "bench") -> bool:
    """Replace the text between the README's ``<!-- {marker}:start/end -->`` comments; False
    when they are absent."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    text = README.read_text()
    if start not in text or end not in text:
        return False
    head, rest = text.split(start, 1)
    _old, tail = rest.split(end, 1)
    README.write_text(f"{head}{start}\n{summary}\n{end}{tail}")
    return True


def write_results(results: list[dict]) -> None:
    (BENCH / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (BENCH / "results.md").write_text(markdown(results))
    print(f"\nwrote {BENCH / 'results.json'} and {BENCH / 'results.md'}")
    if update_readme(readme_summary(results)):
        print(f"updated the benchmark tables of {README}")


def main_france_only() -> int:
    """``--france``: rerun only the France part (about two minutes) and replace its rows in
    bench/results.json (the other datasets' rows are kept as they are), then rewrite
    results.md and the README tables."""
    from bench import france

    if not france.data_dir().is_dir():
        print(f"no French data at {france.data_dir()}: set CRIMECAST_FRANCE_DATA")
        return 2
    path = BENCH / "results.json"
    old = json.loads(path.read_text()) if path.exists() else []
    before = [r for r in old if not r["dataset"].startswith(("france", "saopaulo"))]
    after = [r for r in old if r["dataset"] == "saopaulo"]
    print("\n== france", flush=True)
    write_results(france.run(before) + after)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="The real-data benchmark: writes bench/results.json and bench/results.md "
        f"(data: {DATA}, or CRIMECAST_DATA)."
    )
    parser.add_argument(
        "--france", action="store_true", help="only the France part (its rows replaced)"
    )
    args = parser.parse_args(argv)
    if args.france:
        return main_france_only()
    if not DATA.is_dir():
        print(f"no real data at {DATA}: set CRIMECAST_DATA to the folder of the extracts")
        return 2
    results: list[dict] = []
    for name, source, rel, cutoff, description in INCIDENT_SETS:
        print(f"\n== {name}: {description}", flush=True)
        rows = run_incident_set(name, source, DATA / rel, cutoff)
        print(
            f"   {rows[0]['split']}; whole run {rows[0]['seconds']} s, ML {rows[0]['ml_seconds']} s"
        )
        for h in sorted({r["horizon"] for r in rows}):
            hr = [r for r in rows if r["horizon"] == h and _is_main(r)]
            ref = next((r["noise_floor_mae"] for r in hr if "noise_floor_mae" in r), None)
            nb = next((r["mae"] for r in hr if r.get("reference")), None)
            print(
                f"   horizon {h}: references (model-based, not floors): Poisson E|Y − median| "
                f"for Y ~ Poisson(trailing 28-day mean) {ref}; realised MAE of median(NB("
                f"trailing 28-day mean, φ from validation)) {nb}"
            )
            for r in hr:
                cov = (
                    f"  cover80 {r['coverage_80']:.3f}  cover95 {r['coverage_95']:.3f}"
                    if "coverage_80" in r
                    else ""
                )
                tag = "  <- champion per series: " + r["champions"] if "champions" in r else ""
                tag += "  (source champion on cv)" if r.get("source_champion") else ""
                ci = f" [{r['mae_lo']:.4f}, {r['mae_hi']:.4f}]" if "mae_lo" in r else ""
                rmse = f"  RMSE {r['rmse']:.4f}" if "rmse" in r else ""
                tag += "  (peer)" if r.get("peer") else ""
                print(f"     {r['model']:<22} MAE {r['mae']:.4f}{ci}{rmse}  n={r['n']}{cov}{tag}")
        results += rows
    for module in ("france", "saopaulo"):
        bench_file = BENCH / f"{module}.py"
        if bench_file.exists():
            print(f"\n== {module}", flush=True)
            mod = __import__(f"bench.{module}", fromlist=["run"])
            results = mod.run(results)
    write_results(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
