"""`crimecast` command line: run the pipeline, validate a source mapping, print the summary."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from orchestration.config import REPO_ROOT, settings


def _instance():
    import dagster as dg

    home = Path(
        os.environ.setdefault("DAGSTER_HOME", str(REPO_ROOT / "warehouse" / "dagster_home"))
    )
    home.mkdir(parents=True, exist_ok=True)
    return dg.DagsterInstance.get()


def step_timings(instance, run_id: str) -> list[tuple[str, float]]:
    """Wall time of each step of a run, from its event log."""
    import dagster as dg

    starts: dict[str, float] = {}
    out: list[tuple[str, float]] = []
    for entry in instance.all_logs(run_id):
        ev = entry.dagster_event
        if ev is None or ev.step_key is None:
            continue
        if ev.event_type == dg.DagsterEventType.STEP_START:
            starts[ev.step_key] = entry.timestamp
        elif ev.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            out.append((ev.step_key, entry.timestamp - starts.get(ev.step_key, entry.timestamp)))
    return out


def cmd_run(_args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    from orchestration.definitions import build_defs

    t_import = time.perf_counter() - t0
    instance = _instance()
    # resources from the settings of this call (the module-level `defs` keeps those of import)
    job = build_defs().resolve_job_def("refresh_all")
    # progress (INFO) on the console; Dagster's per-event DEBUG records stay in the run's
    # event log, visible in `make dev`
    level = os.environ.get("CRIMECAST_LOG_LEVEL", "INFO").upper()
    result = job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": level}}}},
    )
    total = time.perf_counter() - t0
    print()
    print("Stage timings (s):")
    print(f"  {'load definitions (dbt manifest, imports)':<44} {t_import:7.1f}")
    for step, secs in step_timings(instance, result.run_id):
        print(f"  {step:<44} {secs:7.1f}")
    print(f"  {'total':<44} {total:7.1f}")
    if not result.success:
        for ev in result.all_events:
            if ev.is_step_failure:
                err = ev.step_failure_data.error
                print(f"\nFAILED step {ev.step_key}: {err.message if err else ''}", file=sys.stderr)
        return 1
    from orchestration.summary import print_summary

    print_summary(settings().warehouse)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from orchestration.ingest.mapping import MappingError
    from orchestration.ingest.preview import preview_source

    try:
        print(preview_source(Path(args.mapping), args.input or args.input_opt))
    except MappingError as exc:
        print(f"mapping error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a LoadError or an unreadable input: say it plainly
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_summary(_args: argparse.Namespace) -> int:
    from orchestration.summary import print_summary

    print_summary(settings().warehouse)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crimecast", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="materialize every asset (the refresh_all job)").set_defaults(
        func=cmd_run
    )
    v = sub.add_parser(
        "validate-source", help="validate a source mapping and preview what it would load"
    )
    v.add_argument("mapping", help="path to a mapping YAML, e.g. sources/houston.yml")
    v.add_argument("input", nargs="?", help="file, folder, glob or URL (default: the mapping's)")
    v.add_argument("--input", dest="input_opt", help="same as the positional input")
    v.set_defaults(func=cmd_validate)
    sub.add_parser("summary", help="print the accuracy summary of the warehouse").set_defaults(
        func=cmd_summary
    )
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
