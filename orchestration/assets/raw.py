"""Raw layer: every configured source mapping (sources/*.yml) loaded into raw.* tables."""

import dagster as dg

from orchestration.config import SOURCES_DIR, settings
from orchestration.ingest.loader import LoadError, load_source
from orchestration.ingest.mapping import MappingError, discover_mappings, load_mapping
from orchestration.resources import WarehouseResource

RAW_INCIDENTS = dg.AssetKey(["raw", "incidents"])
RAW_SOURCE_FILES = dg.AssetKey(["raw", "source_files"])
RAW_SOURCES = dg.AssetKey(["raw", "sources"])


class RawIncidentsConfig(dg.Config):
    """Run-time overrides; the environment (CRIMECAST_SOURCES, CRIMECAST_INPUT_<NAME>) is the
    default."""

    sources: list[str] = []
    inputs: dict[str, str] = {}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            RAW_INCIDENTS,
            description="Every data row of every configured incident file, mapped onto the "
            "canonical fields by its source mapping (sources/*.yml), with lineage.",
            group_name="raw",
            kinds={"duckdb", "python"},
        ),
        dg.AssetSpec(
            RAW_SOURCE_FILES,
            description="One row per loaded file: path or URL, sha256, encoding, rows.",
            group_name="raw",
            kinds={"duckdb"},
        ),
        dg.AssetSpec(
            RAW_SOURCES,
            description="One row per loaded source mapping: title, country, time zone.",
            group_name="raw",
            kinds={"duckdb"},
        ),
    ],
    pool="warehouse_writer",
)
def raw_incidents(
    context: dg.AssetExecutionContext, config: RawIncidentsConfig, warehouse: WarehouseResource
):
    s = settings()
    names = config.sources or s.sources
    try:
        paths = discover_mappings(SOURCES_DIR, names)
    except MappingError as exc:
        raise dg.Failure(description=f"MappingError: {exc}") from exc
    results = []
    with warehouse.connect() as con:
        for path in paths:
            try:
                mapping = load_mapping(path)
                spec = config.inputs.get(mapping.name) or s.input_for(mapping.name)
                context.log.info(f"loading {mapping.name!r} from {spec or 'its default input'}")
                result = load_source(con, mapping, spec, sample_dir=s.sample_dir / mapping.name)
            except (LoadError, MappingError) as exc:
                # Each source loads in one transaction: the warehouse keeps its previous state.
                raise dg.Failure(
                    description=f"{type(exc).__name__}: {exc}",
                    metadata={"source_mapping": str(path), "warehouse": "unchanged"},
                ) from exc
            context.log.info(f"{mapping.name}: {result.to_metadata()}")
            results.append(result)
        totals = con.execute(
            "select source, count(*), min(occurred_at)::varchar, max(occurred_at)::varchar "
            "from raw.incidents group by source order by source"
        ).fetchall()
        n_files = con.execute("select count(*) from raw.source_files").fetchone()[0]
    per_source = {r.source: r.to_metadata() for r in results}
    yield dg.MaterializeResult(
        asset_key=RAW_INCIDENTS,
        metadata={
            "dagster/row_count": sum(t[1] for t in totals),
            "rows_by_source": {t[0]: t[1] for t in totals},
            "date_range_by_source": {t[0]: f"{t[2]} → {t[3]}" for t in totals},
            "this_load": per_source,
        },
    )
    yield dg.MaterializeResult(asset_key=RAW_SOURCE_FILES, metadata={"dagster/row_count": n_files})
    yield dg.MaterializeResult(asset_key=RAW_SOURCES, metadata={"dagster/row_count": len(totals)})
