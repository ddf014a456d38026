"""Raw layer: each source mapping (sources/*.yml) is one partition of the raw incident assets.

``INCIDENT_PARTITIONS`` holds one partition per mapping found when the code loads: a run for
partition ``boston`` loads Boston's files only, so a bad Boston file fails Boston's partition
and leaves every other city as loaded (docs/decisions.md). ``crimecast run`` launches one run
per selected city (orchestration/cli.py).

Also the one rule for source names (:func:`select_sources`): CRIMECAST_SOURCES and the
``sources`` run config name incident mappings (``sources/<name>.yml``) and the sources with
their own loaders (``france``, ``saopaulo``); what they name is what a run loads.
"""

import traceback
from dataclasses import dataclass
from datetime import timedelta

import dagster as dg

from ingest.loader import LoadError, load_source
from ingest.mapping import MappingError, discover_mappings, load_mapping
from ml.project import dbt_project_var
from orchestration.config import DATASETS, SOURCES_DIR, SettingsError, settings, split_sources
from orchestration.resources import RunDefaults, WarehouseResource

RAW_INCIDENTS = dg.AssetKey(["raw", "incidents"])
RAW_SOURCE_FILES = dg.AssetKey(["raw", "source_files"])
RAW_SOURCES = dg.AssetKey(["raw", "sources"])
RAW_INCIDENT_KEYS = (RAW_INCIDENTS, RAW_SOURCE_FILES, RAW_SOURCES)


def incident_source_names() -> list[str]:
    """The incident mappings (sources/*.yml) by name, sorted."""
    return [p.stem for p in discover_mappings(SOURCES_DIR)]


#: one partition per incident source mapping, as found when the code loads (a new mapping is a
#: new partition after a reload of the code location)
INCIDENT_PARTITIONS = dg.StaticPartitionsDefinition(incident_source_names())


@dataclass(frozen=True)
class SourceSelection:
    """What a run loads: incident mappings (None: every sources/*.yml; []: none) and which of
    France / São Paulo."""

    incidents: list[str] | None
    datasets: tuple[str, ...]

    def includes(self, name: str) -> bool:
        if name in DATASETS:
            return name in self.datasets
        return self.incidents is None or name in self.incidents

    def cities(self) -> list[str]:
        """The incident sources selected, by name (every mapping when ``incidents`` is None)."""
        return incident_source_names() if self.incidents is None else list(self.incidents)

    def describe(self) -> str:
        incidents = "every incident mapping" if self.incidents is None else self.incidents
        return f"incidents: {incidents}; own loaders: {list(self.datasets)}"


def known_sources() -> list[str]:
    """Every selectable name: the incident mappings, then France and São Paulo."""
    return incident_source_names() + list(DATASETS)


def select_sources(names: list[str] | None, setting: str = "CRIMECAST_SOURCES") -> SourceSelection:
    """The selection for ``names`` (no name: everything). An unknown name raises a one-line
    SettingsError naming ``setting`` and listing the known names."""
    given = [n.strip() for n in names or () if n.strip()]
    known = known_sources()
    for name in given:
        if name not in known:
            raise SettingsError(
                setting, ",".join(given), f"unknown source {name!r} (known: {', '.join(known)})"
            )
    incidents, datasets = split_sources(given)
    return SourceSelection(incidents, datasets)


def env_selection() -> SourceSelection:
    """The selection of CRIMECAST_SOURCES (unset: everything)."""
    s = settings()
    if s.sources is None:
        return SourceSelection(None, s.datasets)
    return select_sources([*s.sources, *s.datasets])


def config_selection(context: dg.AssetExecutionContext) -> SourceSelection | None:
    """The selection of the ``sources`` run config of raw_incidents, when the run sets it
    (CRIMECAST_SOURCES decides which assets a job holds; a run config cannot change that)."""
    ops = (context.run.run_config or {}).get("ops") or {}
    names = ((ops.get("raw_incidents") or {}).get("config") or {}).get("sources")
    return select_sources(list(names), "sources (raw_incidents run config)") if names else None


def failure(
    context: dg.AssetExecutionContext, description: str, exc: BaseException, **metadata
) -> dg.Failure:
    """A dg.Failure whose description is the one line a user reads; the stack goes to the
    DEBUG log of the run (the event log keeps it too)."""
    context.log.debug("".join(traceback.format_exception(exc)))
    line = " ".join(description.split())  # one line, whatever the message held
    return dg.Failure(description=line, metadata=metadata)


class RawIncidentsConfig(dg.Config):
    """Run-time overrides; the environment (CRIMECAST_SOURCES, CRIMECAST_INPUT_<NAME>) is the
    default. The partition decides which incident source loads; ``sources`` (the names of
    CRIMECAST_SOURCES) tells the France and São Paulo steps of the run whether to reload, and a
    partition it leaves out is not loaded."""

    sources: list[str] = []
    inputs: dict[str, str] = {}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            RAW_INCIDENTS,
            description="Every data row of every configured incident file, mapped onto the "
            "canonical fields by its source mapping (sources/*.yml), with lineage. One "
            "partition per source mapping.",
            group_name="raw",
            kinds={"duckdb", "python"},
            # loaded daily (06:00 UTC): WARN, then fail, after the vars' hours without a load of
            # a city (dbt_project.yml; `dbt source freshness` on raw.incidents reads them too)
            freshness_policy=dg.FreshnessPolicy.time_window(
                fail_window=timedelta(hours=int(dbt_project_var("load_error_after_hours"))),
                warn_window=timedelta(hours=int(dbt_project_var("load_warn_after_hours"))),
            ),
            owners=["team:data-engineering"],
            tags={"domain": "incidents", "layer": "raw"},
        ),
        dg.AssetSpec(
            RAW_SOURCE_FILES,
            description="One row per loaded file: path or URL, sha256, encoding, rows.",
            group_name="raw",
            kinds={"duckdb"},
            owners=["team:data-engineering"],
            tags={"domain": "incidents", "layer": "raw"},
        ),
        dg.AssetSpec(
            RAW_SOURCES,
            description="One row per loaded source mapping: title, country, time zone.",
            group_name="raw",
            kinds={"duckdb"},
            owners=["team:data-engineering"],
            tags={"domain": "incidents", "layer": "raw"},
        ),
    ],
    partitions_def=INCIDENT_PARTITIONS,
    pool="warehouse_writer",
)
def raw_incidents(
    context: dg.AssetExecutionContext,
    config: RawIncidentsConfig,
    warehouse: WarehouseResource,
    run_defaults: RunDefaults,
):
    s = warehouse.paths
    name = context.partition_key
    try:
        selection = config_selection(context)
        if selection is not None and not selection.includes(name):
            raise SettingsError(
                "sources (raw_incidents run config)",
                ",".join(config.sources),
                f"leaves out this run's partition {name!r}",
            )
        (path,) = discover_mappings(SOURCES_DIR, [name])
        mapping = load_mapping(path)
    except (MappingError, SettingsError) as exc:
        raise failure(context, f"raw_incidents: {exc}", exc) from exc
    with warehouse.connect() as con:
        try:
            spec = config.inputs.get(mapping.name) or run_defaults.input_for(mapping.name)
            context.log.info(f"loading {mapping.name!r} from {spec or 'its default input'}")
            result = load_source(con, mapping, spec, sample_dir=s.sample_dir / mapping.name)
        except (LoadError, MappingError) as exc:
            # The source loads in one transaction: its raw rows are as before; the other
            # sources are other partitions, untouched by this run. Say exactly that.
            raise failure(
                context,
                f"{name}: {exc}",
                exc,
                source_mapping=str(path),
                warehouse=(
                    f"{name}: raw.incidents / raw.source_files / raw.sources rows unchanged "
                    "(its load rolled back); no other incident source changed in this run"
                ),
                other_sources="every other incident source is its own partition, and France "
                "and São Paulo load in their own steps (their materializations say what they "
                "wrote)",
            ) from exc
        context.log.info(f"{mapping.name}: {result.to_metadata()}")
        rows, first, last = con.execute(
            "select count(*), min(occurred_at)::varchar, max(occurred_at)::varchar "
            "from raw.incidents where source = ?",
            [name],
        ).fetchone()
        n_files = con.execute(
            "select count(*) from raw.source_files where source = ?", [name]
        ).fetchone()[0]
    yield dg.MaterializeResult(
        asset_key=RAW_INCIDENTS,
        metadata={
            "dagster/row_count": rows,
            "rows_by_source": {name: rows},
            "date_range_by_source": {name: f"{first} → {last}"},
            "first_incident": first or "none",
            "last_incident": last or "none",
            "this_load": {name: result.to_metadata()},
        },
    )
    yield dg.MaterializeResult(asset_key=RAW_SOURCE_FILES, metadata={"dagster/row_count": n_files})
    yield dg.MaterializeResult(asset_key=RAW_SOURCES, metadata={"dagster/row_count": 1})
