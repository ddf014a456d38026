"""São Paulo phone robberies/thefts: raw records → dbt marts → calibrated place-type classifier.

Assets
* ``[raw, saopaulo_phone_thefts]`` (group "raw"): the records file(s), parsed strictly and
  written in one transaction (ingest/saopaulo.py). Input:
  ``CRIMECAST_INPUT_SAOPAULO`` (file, folder, glob or http(s) URL), else the generated sample.
* ``[ml, saopaulo_metrics]``, ``[ml, saopaulo_calibration]``, ``[ml, saopaulo_ablation]``,
  ``[ml, saopaulo_place_probabilities]`` (group "ml"): ml/saopaulo/ on
  ``marts.saopaulo_phone_theft_records`` (see docs/saopaulo.md), read and appended (one
  vintage per run_id) through the ``ml_tables`` resource (ml/tables.py) like ``ml_forecasts``.

Add ``saopaulo_assets`` to the Definitions (orchestration/definitions.py).
"""

import uuid
from datetime import UTC, datetime

import dagster as dg

from ingest.saopaulo import load_saopaulo
from orchestration.config import MIN_CELL_RECORDS
from orchestration.defs.raw_files import UNCHANGED, left_out, load_failure
from orchestration.resources import MLTablesResource, RunDefaults, WarehouseResource

RAW_SAOPAULO = dg.AssetKey(["raw", "saopaulo_phone_thefts"])
ML_METRICS = dg.AssetKey(["ml", "saopaulo_metrics"])
ML_CALIBRATION = dg.AssetKey(["ml", "saopaulo_calibration"])
ML_ABLATION = dg.AssetKey(["ml", "saopaulo_ablation"])
ML_PROBABILITIES = dg.AssetKey(["ml", "saopaulo_place_probabilities"])


class SaoPauloRawConfig(dg.Config):
    """Run-time override of the input (file, folder, glob, URL or ``sample``); empty = the
    run defaults (CRIMECAST_INPUT_SAOPAULO), else the generated sample."""

    input: str = ""


@dg.asset(
    key=RAW_SAOPAULO,
    description="São Paulo mobile-phone robberies and thefts (SSP-SP), one row per record as "
    "published (BAIRRO, MARCA_OBJETO, DIA_SEMANA, PERIODO, IDADE, SEXO, RUBRICA, "
    "DESCR_SUBTIPOLOCAL) with lineage. IDADE and SEXO are random in the derived extract.",
    group_name="raw",
    kinds={"duckdb", "python"},
    pool="warehouse_writer",
)
def saopaulo_raw(
    context: dg.AssetExecutionContext,
    config: SaoPauloRawConfig,
    warehouse: WarehouseResource,
    run_defaults: RunDefaults,
) -> dg.MaterializeResult:
    s = warehouse.paths
    if left_out(context, "saopaulo"):
        return dg.MaterializeResult(metadata=UNCHANGED)
    spec = config.input.strip() or run_defaults.input_for("saopaulo")
    context.log.info(f"loading São Paulo records from {spec or 'the generated sample'}")
    tables = "raw.saopaulo_phone_thefts and raw.saopaulo_source_files"
    with warehouse.connect() as con, load_failure(context, "saopaulo", tables):
        result = load_saopaulo(
            con,
            spec,
            sample_dir=s.sample_dir / "saopaulo",
            download_dir=s.download_dir / "saopaulo",
        )
    return dg.MaterializeResult(
        metadata={"dagster/row_count": result.rows, "reloaded": "yes", **result.to_metadata()}
    )


def _mart_key(model: str) -> dg.AssetKey:
    from dagster_dbt import get_asset_key_for_model

    from orchestration.defs.dbt import crimecast_dbt_assets

    return get_asset_key_for_model([crimecast_dbt_assets], model)


class SaoPauloModelConfig(dg.Config):
    """``ablation``: run the feature ablation (one XGBoost fit per candidate feature; about 5
    minutes on the real file, seconds on the sample). Without it the final model uses every
    candidate except the random IDADE/SEXO."""

    ablation: bool = True
    #: the project's k of the small-cell rule by default (dbt_project.yml); a run may raise it
    #: (a lower k still meets the serving models' and the publisher's k, which stay)
    min_cell_records: int = MIN_CELL_RECORDS


_DEPS = ["saopaulo_phone_theft_records", "saopaulo_data_quality"]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ML_METRICS,
            description="Held-out (random 25 %, stratified) log loss, Brier score, top-1/top-3 "
            "accuracy and macro F1 of the place-type models beside the prior and the "
            "frequency baselines.",
            group_name="ml",
            kinds={"duckdb", "python"},
            deps=[_mart_key(m) for m in _DEPS],
        ),
        dg.AssetSpec(
            ML_CALIBRATION,
            description="Reliability table: per model, place type and probability bin, the "
            "mean predicted probability and the observed frequency on the held-out split.",
            group_name="ml",
            kinds={"duckdb"},
            deps=[_mart_key(m) for m in _DEPS],
        ),
        dg.AssetSpec(
            ML_ABLATION,
            description="Feature ablation on the validation split: validation log loss with "
            "all candidate features and without each one (IDADE/SEXO included, to show they "
            "add nothing); the kept features.",
            group_name="ml",
            kinds={"duckdb"},
            deps=[_mart_key(m) for m in _DEPS],
        ),
        dg.AssetSpec(
            ML_PROBABILITIES,
            description="Calibrated place-type probabilities per (neighbourhood, weekday, "
            "period, brand) cell; cells built from fewer than 5 records are suppressed (the "
            "materialization metadata counts the cells and records published and suppressed).",
            group_name="ml",
            kinds={"duckdb"},
            deps=[_mart_key(m) for m in _DEPS],
        ),
    ],
    pool="warehouse_writer",
)
def saopaulo_place_model(
    context: dg.AssetExecutionContext,
    config: SaoPauloModelConfig,
    ml_tables: MLTablesResource,
):
    from ml.saopaulo import PlaceTypeConfig, load_records, result_frames, run

    # read and append through ml/tables.py, as ml_forecasts does (CRIMECAST_ML_ENGINE)
    with ml_tables.open() as tables:
        records = load_records(tables)
        quality = tables.read(
            "select outcome, sum(rows) as n from marts.saopaulo_data_quality group by outcome"
        )
    excluded = {r.outcome: int(r.n) for r in quality.itertuples() if r.outcome != "kept"}
    if excluded.get("unmapped_place_type"):
        context.log.warning(
            f"{excluded['unmapped_place_type']} rows have a place subtype that "
            "dbt_project/seeds/saopaulo_place_types.csv does not map "
            "(see marts.saopaulo_data_quality)"
        )
    cfg = PlaceTypeConfig(run_ablation=config.ablation, min_cell_records=config.min_cell_records)
    result = run(records, cfg, log=context.log.info)
    run_id = f"saopaulo-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    with ml_tables.open(write=True) as tables:
        counts = tables.append(result_frames(result, run_id))

    m = result.metrics.set_index("model")
    prior_ll = float(m.loc["prior", "log_loss"])
    model_ll = float(m.loc["xgboost", "log_loss"])
    baselines = m[m.index.str.startswith("freq_")]
    best_name = str(baselines["log_loss"].idxmin())
    summary = {
        "run_id": run_id,
        "records": len(records),
        "excluded_rows": excluded,
        "log_loss_prior": round(prior_ll, 4),
        "log_loss_model": round(model_ll, 4),
        "log_loss_vs_prior": f"{model_ll / prior_ll - 1:+.1%}",
        "best_baseline": f"{best_name} ({baselines.loc[best_name, 'log_loss']:.4f})",
        "top3_model": round(float(m.loc["xgboost", "top3"]), 4),
        "features": result.info["features"],
        "temperature": round(result.info["temperature"], 3),
        "suppression": result.info["suppression"],
    }
    context.log.info(f"São Paulo place-type model: {summary}")
    yield dg.MaterializeResult(
        asset_key=ML_METRICS,
        metadata={
            "dagster/row_count": counts["saopaulo_metrics"],
            **summary,
            "metrics": dg.MetadataValue.md(result.metrics.round(4).to_markdown(index=False)),
        },
    )
    yield dg.MaterializeResult(
        asset_key=ML_CALIBRATION,
        metadata={"dagster/row_count": counts["saopaulo_calibration"], "run_id": run_id},
    )
    yield dg.MaterializeResult(
        asset_key=ML_ABLATION,
        metadata={
            "dagster/row_count": counts["saopaulo_ablation"],
            "run_id": run_id,
            "kept_features": result.info["features"],
        },
    )
    # Suppression: cells (and their records) below min_cell_records are not published.
    # published + suppressed = total (cells_total = distinct cells in the mart records).
    suppressed = result.info["suppression"]
    yield dg.MaterializeResult(
        asset_key=ML_PROBABILITIES,
        metadata={
            "dagster/row_count": counts["saopaulo_place_probabilities"],
            "run_id": run_id,
            "cells": suppressed["cells_published"],
            **suppressed,
        },
    )


saopaulo_assets = [saopaulo_raw, saopaulo_place_model]
