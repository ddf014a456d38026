"""What the raw assets of the file sources (France, São Paulo) share: whether the run's sources
leave the source out, and the loader's one-line error as the run's failure."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from ingest.csv_files import CsvLoadError
from orchestration.config import SettingsError
from orchestration.defs.incidents.raw import config_selection, failure

#: metadata of a table kept as it is because the run's sources leave its source out
UNCHANGED = {"reloaded": "no: not in the run's sources; unchanged"}


def left_out(context: dg.AssetExecutionContext, source: str) -> bool:
    """True when the run's ``sources`` config leaves ``source`` out (CRIMECAST_SOURCES decides
    the job's assets): the asset then reports its tables unchanged rather than skip, which
    would skip dbt for every source."""
    try:
        selection = config_selection(context)
    except SettingsError as exc:
        raise failure(context, f"{source}: {exc}", exc) from exc
    if selection is not None and not selection.includes(source):
        context.log.info(f"{source} is not in this run's sources ({selection.describe()})")
        return True
    return False


@contextmanager
def load_failure(context: dg.AssetExecutionContext, source: str, tables: str) -> Iterator[None]:
    """A loader error as a dg.Failure of one line, ``<source>: <message>``; the loader rolled
    its one transaction back, so ``tables`` are unchanged."""
    try:
        yield
    except CsvLoadError as exc:
        raise failure(context, f"{source}: {exc}", exc, warehouse=f"{tables} unchanged") from exc
