"""`crimecast` command line: run the pipeline, validate a source mapping, print the summary."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from orchestration.config import REPO_ROOT, settings


def dagster_home() -> Path:
    """DAGSTER_HOME, else warehouse/dagster_home (the Makefile's default)."""
    value = os.environ.get("DAGSTER_HOME", "").strip()
    return Path(value).resolve() if value else REPO_ROOT / "warehouse" / "dagster_home"


def _instance():
    import dagster as dg

    from orchestration.dagster_home import install_dagster_yaml

    home = dagster_home()
    install_dagster_yaml(home)  # crimecast's instance settings, unless the home has its own
    # the instance of that folder, passed to the run (the environment is left as it is)
    return dg.DagsterInstance.from_config(str(home))


#: the run tag by which the Dagster UI lists a job's runs (Dagster's REPOSITORY_LABEL_TAG)
REPOSITORY_LABEL_TAG = ".dagster/repository"


def job_page_tags(defs) -> dict[str, str]:
    """Tags that list a CLI run on its job's page in `make dev`. The page asks for the runs of
    the job name tagged ``.dagster/repository = <repository>@<code location>``; Dagster adds
    that tag only to runs launched from a code location (``dagster job launch``, which with the
    queued coordinator needs the daemon), not to ``execute_in_process`` runs, which the UI then
    shows in the global Runs list only."""
    from orchestration.config import code_location_name

    return {REPOSITORY_LABEL_TAG: f"{defs.get_repository_def().name}@{code_location_name()}"}


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


def validate_run_settings():
    """The settings `crimecast run` uses, checked before Dagster starts: the sources exist,
    the cutoffs are dates of known sources, the horizon, profile and training window are in
    range. Raises SettingsError / MappingError with a one-line message."""
    from ingest.mapping import discover_mappings
    from orchestration.config import SOURCES_DIR, ml_settings
    from orchestration.defs.incidents.raw import env_selection

    env_selection()  # CRIMECAST_SOURCES: incident mappings, france, saopaulo
    known = [p.stem for p in discover_mappings(SOURCES_DIR)]
    return ml_settings(sources=known)


def failure_line(event) -> str:
    """The cause of a failed step in one line: a `dg.Failure`'s description, else the
    innermost error of the chain (Dagster wraps it in "Error occurred while executing op")."""
    data = event.step_failure_data
    user = getattr(data, "user_failure_data", None)
    if user is not None and user.description:
        return user.description.strip().splitlines()[0]
    err = data.error
    while err is not None and err.cause is not None:
        err = err.cause
    if err is None:
        return "unknown error"
    if err.cls_name == "DagsterExecutionInterruptedError":
        return "interrupted (Ctrl-C or SIGTERM): the step was stopped before it finished"
    text = (err.message or "").strip().splitlines()
    if not text:
        return err.cls_name or "unknown error"
    # `orchestration.resources.WarehouseBusyError: …` → `WarehouseBusyError: …`
    return re.sub(r"^(?:[a-z_][\w]*\.)+(?=[A-Z]\w*: )", "", text[0])


def compact_console_logger():
    """The console logger of `crimecast run`: one line per record (time, level, step, message;
    a failed step's cause as `failure_line` gives it). Dagster's own console logger prints
    each failure with its stack traces; those stay in the event log and the run's log file."""
    import logging

    import dagster as dg

    class OneLine(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            meta = getattr(record, "dagster_meta", None) or {}
            event = meta.get("dagster_event")
            if event is not None and event.is_step_failure:
                message = f"failed: {failure_line(event)}"
            else:
                message = str(meta.get("orig_message") or record.getMessage())
            lines = message.strip().splitlines()
            step = meta.get("step_key")
            when = time.strftime("%H:%M:%S", time.localtime(record.created))
            where = f"{step}: " if step else ""
            return f"{when} {record.levelname:<7} {where}{lines[0] if lines else ''}"

    @dg.logger(
        {"log_level": dg.Field(str, is_required=False, default_value="INFO")},
        description="One line per record, no stack traces (crimecast run).",
    )
    def console(init_context):
        logger = logging.Logger("crimecast", level=init_context.logger_config["log_level"])
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(OneLine())
        logger.addHandler(handler)
        return logger

    return console


def write_run_log(instance, run_id: str, folder: Path, keep: int = 20) -> Path:
    """Every event record of the run (DEBUG included) with the full error, stack traces and
    causes, of each failure, to ``<folder>/run-<run_id>.log``; the newest ``keep`` are kept."""
    import logging
    from datetime import datetime

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"run-{run_id}.log"
    with path.open("w", encoding="utf-8") as out:
        for entry in instance.all_logs(run_id):
            ev = entry.dagster_event
            when = datetime.fromtimestamp(entry.timestamp).isoformat(sep=" ", timespec="seconds")
            kind = f" {ev.event_type_value}" if ev is not None else ""
            level = logging.getLevelName(entry.level)
            text = entry.user_message or (ev.message if ev is not None else "") or ""
            out.write(f"{when} {level} {entry.step_key or '-'}{kind} {text}\n")
            error = None
            if ev is not None and ev.is_step_failure:
                error = ev.step_failure_data.error
            elif ev is not None and ev.is_run_failure:
                error = getattr(ev.event_specific_data, "error", None)
            if error is not None:
                out.write(error.to_string() + "\n")
    logs = sorted(folder.glob("run-*.log"), key=lambda p: p.stat().st_mtime)
    for old in logs[:-keep]:
        old.unlink(missing_ok=True)
    return path


def run_failure_lines(result) -> list[str]:
    """`FAILED <step>: <cause>` for every failed step, then every failed blocking check (a
    step stopped by a check fails with "blocking check failed"; the check says why)."""
    steps, checks = [], []
    for ev in result.all_events:
        if ev.is_step_failure:
            steps.append(f"FAILED {ev.step_key}: {failure_line(ev)}")
        elif ev.event_type_value == "ASSET_CHECK_EVALUATION":
            check = ev.event_specific_data
            if not check.passed and check.severity.value == "ERROR":
                what = " ".join(str(check.description or "failed").split())
                checks.append(
                    f"FAILED check {check.asset_key.to_user_string()}:{check.check_name}: {what}"
                )
    return steps + checks


def materialized_in(result) -> list[str]:
    return [
        ev.asset_key.to_user_string()
        for ev in result.all_events
        if ev.is_step_materialization and ev.asset_key is not None
    ]


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (`kill`, a container stop) is handled like Ctrl-C while the run lasts: Dagster
    interrupts the step (dagster-dbt passes it on to dbt and waits for it) and the run ends as
    failed. (A SIGKILL cannot be handled: dbt's guard, orchestration/definitions.py, ends it.)"""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_run(_args: argparse.Namespace) -> int:
    from orchestration.config import SettingsError

    t0 = time.perf_counter()
    try:
        ml = validate_run_settings()
        from orchestration.defs.incidents.raw import env_selection

        selection = env_selection()
    except SettingsError as exc:
        print(f"crimecast: {exc}", file=sys.stderr)
        return 2
    level = os.environ.get("CRIMECAST_LOG_LEVEL", "INFO").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        print(
            f"crimecast: CRIMECAST_LOG_LEVEL={level}: choose DEBUG, INFO, WARNING or ERROR",
            file=sys.stderr,
        )
        return 2
    from orchestration.definitions import BUILD_JOB, build_defs, run_plan
    from orchestration.defs.incidents.ml import ml_run_config

    t_import = time.perf_counter() - t0
    instance = _instance()
    # The raw load of each city in its own run (its partition), France's and São Paulo's in
    # one, then one build run (dbt, forecasts, serving models, published copy) from whatever
    # the raw tables hold: a bad file fails its source's load only (rolled back, its previous
    # rows stay), and dbt starts once. Resources from the settings of this call (the
    # module-level `defs` keeps those of import), jobs of the sources CRIMECAST_SOURCES names.
    defs = build_defs(selection=selection)
    ui_tags = job_page_tags(defs)
    ops = ml_run_config(ml, sources=selection.incidents)  # None: every city
    results = []
    skipped_build = False
    for planned in run_plan(selection):
        if planned.job == BUILD_JOB and results and not any(r.success for _l, r in results):
            skipped_build = True  # nothing new in the raw tables: the build would redo the last
            break
        job = defs.resolve_job_def(planned.job)
        job = job.with_logger_defs({"console": compact_console_logger()})
        # progress (INFO) on the console; Dagster's per-event DEBUG records stay in the run's
        # event log, visible in `make dev`. The ML settings are those validated above (the
        # MLConfig defaults are the environment at import).
        with _sigterm_as_interrupt():
            result = job.execute_in_process(
                instance=instance,
                raise_on_error=False,
                partition_key=planned.partition,
                tags=ui_tags,
                run_config={
                    "loggers": {"console": {"config": {"log_level": level}}},
                    # only the ops of this job (CRIMECAST_SOURCES may leave ml_forecasts out)
                    "ops": {k: v for k, v in ops.items() if job.graph.has_node_named(k)},
                },
            )
        results.append((planned.label, result))
    total = time.perf_counter() - t0
    print()
    print("Stage timings (s):")
    print(f"  {'load definitions (dbt manifest, imports)':<44} {t_import:7.1f}")
    several = len(results) > 1
    for label, result in results:
        for step, secs in step_timings(instance, result.run_id):
            name = f"{label}: {step}" if several else step
            print(f"  {name:<44} {secs:7.1f}")
    print(f"  {'total':<44} {total:7.1f}")
    failed = [(label, r) for label, r in results if not r.success]
    if len(failed) < len(results):
        from serving.summary import print_summary

        print_summary(settings().warehouse)
    if failed:
        changed = [a for _label, r in results for a in materialized_in(r)]
        for label, result in failed:
            log = write_run_log(instance, result.run_id, settings().warehouse_dir / "logs")
            print(
                f"\nFull log of the run{f' of {label}' if several else ''} (DEBUG records, "
                f"stack traces): {log}"
            )
        print(f"Materialized before the failure: {', '.join(changed) or 'nothing'}")
        if skipped_build:
            print(
                "Every load failed: the build (dbt, forecasts, published copy) was not run; the "
                "warehouse and its published copy are as before."
            )
        if several:
            ok = [label for label, r in results if r.success]
            print(
                f"Runs that succeeded: {', '.join(ok) or 'none'}; failed: "
                f"{', '.join(label for label, _r in failed)}"
            )
        sys.stdout.flush()
        # the causes last: the final lines a user reads
        for _label, result in failed:
            for line in run_failure_lines(result) or [f"FAILED run {result.run_id}"]:
                print(line, file=sys.stderr)
        return 1
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from ingest.mapping import MappingError
    from ingest.preview import preview_source

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
    from serving.summary import print_summary

    print_summary(settings().warehouse)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crimecast", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "run", help="load every source, build, forecast and publish (load_city, build_and_publish)"
    ).set_defaults(func=cmd_run)
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
