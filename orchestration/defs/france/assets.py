"""France (SSMSI recorded crime): raw files → dbt France marts → annual backtests and forecasts.

Assets
* ``[raw, france_regional]``, ``[raw, france_departmental]`` (group "raw"): the published
  files, parsed strictly and written in one transaction (ingest/france.py).
  Input per file: ``CRIMECAST_INPUT_FRANCE_REGIONAL`` / ``CRIMECAST_INPUT_FRANCE_DEPARTMENTAL``,
  else ``CRIMECAST_INPUT_FRANCE`` (a folder or glob holding both), else the generated sample.
* ``[ml, france_forecasts]``, ``[ml, france_backtest_predictions]``,
  ``[ml, france_backtest_metrics]`` (group "ml"): ml/annual.py on
  ``marts.france_annual_features``. ``FranceModelConfig.models`` (default: the run defaults'
  ``CRIMECAST_FRANCE_MODELS``, else ``ml.annual.LEAN_MODELS``) restricts the models tried;
  ``all`` runs the whole zoo, as the benchmark (bench/france.py) does. Each run APPENDS its
  rows (vintages by ``run_id``, with ``created_at`` and the forecasts' ``as_of_year``) through
  ``ml.tables``, as the daily tables; readers take the latest run (serving ``*_latest``).
"""

import uuid
from datetime import UTC, datetime

import dagster as dg
from dagster import AssetExecutionContext

from ingest.france import input_specs, load_france
from orchestration.defs.raw_files import UNCHANGED, left_out, load_failure
from orchestration.resources import MLTablesResource, RunDefaults, WarehouseResource

RAW_FRANCE_REGIONAL = dg.AssetKey(["raw", "france_regional"])
RAW_FRANCE_DEPARTMENTAL = dg.AssetKey(["raw", "france_departmental"])
ML_FRANCE_FORECASTS = dg.AssetKey(["ml", "france_forecasts"])
ML_FRANCE_BACKTEST_PREDICTIONS = dg.AssetKey(["ml", "france_backtest_predictions"])
ML_FRANCE_BACKTEST_METRICS = dg.AssetKey(["ml", "france_backtest_metrics"])
_KEYS = {"regional": RAW_FRANCE_REGIONAL, "departmental": RAW_FRANCE_DEPARTMENTAL}


class FranceRawConfig(dg.Config):
    """Run-time overrides of the inputs (file, folder, glob, URL or ``sample``); empty = the
    run defaults (CRIMECAST_INPUT_FRANCE_REGIONAL / _DEPARTMENTAL / CRIMECAST_INPUT_FRANCE)."""

    regional: str = ""
    departmental: str = ""


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            RAW_FRANCE_REGIONAL,
            description="SSMSI recorded crime by region (data.gouv.fr file as published, "
            "parsed: BOM, quotes, decimal comma). Offences recorded by police and gendarmerie.",
            group_name="raw",
            kinds={"duckdb", "python"},
        ),
        dg.AssetSpec(
            RAW_FRANCE_DEPARTMENTAL,
            description="SSMSI recorded crime by département (data.gouv.fr file as published).",
            group_name="raw",
            kinds={"duckdb", "python"},
        ),
    ],
    pool="warehouse_writer",
)
def france_raw(
    context: dg.AssetExecutionContext,
    config: FranceRawConfig,
    warehouse: WarehouseResource,
    run_defaults: RunDefaults,
):
    s = warehouse.paths
    if left_out(context, "france"):
        for key in _KEYS.values():
            yield dg.MaterializeResult(asset_key=key, metadata=UNCHANGED)
        return
    specs = input_specs(run_defaults.input_for)
    for kind in specs:
        override = getattr(config, kind).strip()
        if override:
            specs[kind] = override
    context.log.info(f"loading France files: {specs} (None = generated sample)")
    tables = "raw.france_regional and raw.france_departmental"
    with warehouse.connect() as con, load_failure(context, "france", tables):
        results = load_france(
            con, specs, sample_dir=s.sample_dir / "france", download_dir=s.download_dir / "france"
        )
    for r in results:
        yield dg.MaterializeResult(
            asset_key=_KEYS[r.kind],
            metadata={
                "reloaded": "yes",
                "dagster/row_count": r.rows,
                "source_file": r.source_file,
                "sha256": r.sha256,
                "years": f"{r.years[0]}–{r.years[1]}",
            },
        )


def _feature_mart_key() -> dg.AssetKey:
    """The dbt asset of marts.france_annual_features (["marts", "france_annual_features"])."""
    from dagster_dbt import get_asset_key_for_model

    from orchestration.defs.dbt import crimecast_dbt_assets

    return get_asset_key_for_model([crimecast_dbt_assets], "france_annual_features")


class FranceModelConfig(dg.Config):
    """The France models tried: a comma list, ``all`` (the whole zoo), or empty: the run
    defaults (CRIMECAST_FRANCE_MODELS), else ml.annual.LEAN_MODELS."""

    models: str = ""


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ML_FRANCE_FORECASTS,
            description="Annual rate per 100k forecasts from the last year to 2030 per "
            "geography and indicator, with 80/95 % empirical intervals.",
            group_name="ml",
            kinds={"duckdb", "python"},
            deps=[_feature_mart_key()],
        ),
        dg.AssetSpec(
            ML_FRANCE_BACKTEST_PREDICTIONS,
            description="Out-of-sample predictions of the France splits (h1: ≤2023→2024; "
            "h1_3: ≤2021→2022–2024), every model.",
            group_name="ml",
            kinds={"duckdb"},
            deps=[_feature_mart_key()],
        ),
        dg.AssetSpec(
            ML_FRANCE_BACKTEST_METRICS,
            description="MAE, RMSE, MAPE (rate per 100k) and MAE of counts per dataset, model "
            "and horizon, beside the last_value baseline.",
            group_name="ml",
            kinds={"duckdb"},
            deps=[_feature_mart_key()],
        ),
    ],
    pool="warehouse_writer",
)
def france_ml(
    context: AssetExecutionContext,
    config: FranceModelConfig,
    ml_tables: MLTablesResource,
    run_defaults: RunDefaults,
):
    from ml import annual

    started = datetime.now(UTC)
    run_id = started.strftime("france-%Y%m%dT%H%M%S-") + uuid.uuid4().hex[:6]
    with ml_tables.open() as tables:
        features = annual.load_features(tables)
    models = annual.model_list(config.models or run_defaults.france_models)
    context.log.info(f"France models: {models or 'all'}")
    run = annual.run_annual(
        features, run_id, models=models, started_at=started.replace(tzinfo=None)
    )
    with ml_tables.open(write=True) as tables:
        counts = annual.write_tables(tables, run)
    pooled = run.metrics.loc[run.metrics["horizon"].isna()]
    mae_table = {
        dataset: {m: round(float(v), 2) for m, v in zip(g["model"], g["mae"], strict=True)}
        for dataset, g in pooled.groupby("dataset")
    }
    vs_last = {}
    for dataset, g in pooled.groupby("dataset"):
        # the model chosen on validation years is the headline (the best on the test years
        # would be chosen with the test actuals)
        last = g.loc[g["model"] == "last_value"].iloc[0]
        sel = g.loc[g["selected"].astype(bool)].iloc[0]
        worse = sel["validation_mae"] > last["validation_mae"]
        vs_last[dataset] = (
            f"chosen on validation: {sel['model']}, test MAE {sel['mae']:.2f} vs last_value "
            f"{last['mae']:.2f} ({100 * (sel['mae'] / last['mae'] - 1):+.1f} %); validation MAE "
            f"{sel['validation_mae']:.2f} vs {last['validation_mae']:.2f}"
            + (" — worse than last_value on validation" if worse else "")
        )
    fc = run.forecasts
    yield dg.MaterializeResult(
        asset_key=ML_FRANCE_FORECASTS,
        metadata={
            "dagster/row_count": counts["france_forecasts"],
            "run_id": run_id,
            "years": f"{int(fc['year'].min())}–{int(fc['year'].max())}",
            "as_of_year": int(fc["as_of_year"].max()),
            "models": {k: v for k, v in run.selected.items() if k.endswith("_forecast")},
        },
    )
    yield dg.MaterializeResult(
        asset_key=ML_FRANCE_BACKTEST_PREDICTIONS,
        metadata={"dagster/row_count": counts["france_backtest_predictions"], "run_id": run_id},
    )
    yield dg.MaterializeResult(
        asset_key=ML_FRANCE_BACKTEST_METRICS,
        metadata={
            "dagster/row_count": counts["france_backtest_metrics"],
            "run_id": run_id,
            "mae_by_dataset": mae_table,
            "chosen_vs_last_value": vs_last,
        },
    )


france_assets = [france_raw, france_ml]
