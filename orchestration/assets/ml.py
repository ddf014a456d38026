"""ML layer: backtest the baselines and XGBoost, forecast the next days, record the runs.

All modelling lives in `ml/`; this module only reads the marts, calls it and writes ml.*.
"""


from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import pandas as pd
from dagster_dbt import get_asset_key_for_model

from ml.backtest import backtest_one_step, fit_frame
from ml.features import from_mart, holidays_from_seed
from ml.forecast import forecast_recursive
from ml.models import XGBCountModel, default_models
from ml.runs import (
    backtest_metrics_table,
    backtest_predictions_table,
    forecasts_table,
    metrics_for,
    model_run_record,
    train_window,
)
from orchestration.assets.dbt import crimecast_dbt_assets
from orchestration.config import settings
from orchestration.resources import WarehouseResource

DAILY_FEATURES = get_asset_key_for_model([crimecast_dbt_assets], "daily_features")
HOLIDAYS = get_asset_key_for_model([crimecast_dbt_assets], "holidays")
TEST_DAYS = 56  # default out-of-sample window when CRIMECAST_CUTOFF is not set
ML_TABLES = {
    "forecasts": "Operational forecasts for the days after the last full day, every run kept "
    "(vintages by run_id / as_of_date).",
    "backtest_predictions": "One-step-ahead out-of-sample predictions with their actuals, per "
    "model, cutoff and day.",
    "backtest_metrics": "MAE / RMSE / n per source, model, split and horizon, with the Poisson "
    "noise floor.",
    "model_runs": "One row per trained model: parameters, training window, features, metrics, "
    "artifact path.",
}


def new_run_id(dagster_run_id: str) -> str:
    """Sortable: the latest run has the largest id."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{dagster_run_id[:8]}"


def write_tables(con: duckdb.DuckDBPyConnection, frames: dict[str, pd.DataFrame]) -> None:
    """Append every frame to ml.<name> in one transaction (tables created on first use)."""
    con.execute("create schema if not exists ml")
    con.execute("begin transaction")
    try:
        for name, frame in frames.items():
            con.register("frame_to_write", frame)
            con.execute(
                f"create table if not exists ml.{name} as select * from frame_to_write limit 0"
            )
            con.execute(f"insert into ml.{name} by name select * from frame_to_write")
            con.unregister("frame_to_write")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise


def run_source(source: str, mart: pd.DataFrame, holidays: set, run_id: str, context_log):
    """Backtest and forecast one source; returns the four ml.* frames and a summary."""
    s = settings()
    frame = from_mart(mart)
    last_day = frame["ds"].max().date()
    cutoff = s.cutoff or (last_day - timedelta(days=TEST_DAYS - 1))
    started = datetime.now(UTC).replace(tzinfo=None)
    models = default_models()
    context_log.info(
        f"{source}: {frame['series_id'].nunique()} series, {len(frame)} rows; "
        f"backtest from {cutoff}, models {[m.name for m in models]}"
    )
    preds = backtest_one_step(frame, cutoff, models)
    predictions = backtest_predictions_table(preds, run_id)
    metrics = backtest_metrics_table(preds, run_id)
    scored = metrics.drop(columns=["run_id", "split", "source"])
    start, end = train_window(frame, cutoff)
    runs = [
        model_run_record(
            run_id=run_id,
            source=source,
            model=m,
            train_start=start,
            train_end=end,
            cutoff=cutoff,
            metrics=metrics_for(scored, m.name),
            artifact_dir=s.artifacts_dir,
            started_at=started,
        )
        for m in models
    ]
    # Operational model: the same XGBoost settings refitted on all history.
    final = fit_frame(XGBCountModel(), frame)
    context_log.info(f"{source}: forecasting {s.horizon} days after {last_day}")
    fc = forecast_recursive(frame, final, horizon=s.horizon, holidays=holidays)
    forecasts = forecasts_table(fc, run_id, as_of_date=last_day)
    start_all, end_all = train_window(frame)
    runs.append(
        model_run_record(
            run_id=run_id,
            source=source,
            model=final,
            name="xgboost_operational",
            train_start=start_all,
            train_end=end_all,
            cutoff=None,
            artifact_dir=s.artifacts_dir,
            started_at=started,
        )
    )
    summary = {
        row.model: round(float(row.mae), 4) for row in metrics.itertuples() if row.horizon == 1
    }
    return (
        {
            "backtest_predictions": predictions,
            "backtest_metrics": metrics,
            "model_runs": pd.DataFrame(runs),
            "forecasts": forecasts,
        },
        {"cutoff": str(cutoff), "last_day": str(last_day), "mae": summary},
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["ml", name],
            description=desc,
            group_name="ml",
            deps=[DAILY_FEATURES, HOLIDAYS],
            kinds={"python", "xgboost", "duckdb"},
        )
        for name, desc in ML_TABLES.items()
    ],
    pool="warehouse_writer",
)
def ml_forecasts(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    run_id = new_run_id(context.run_id)
    with warehouse.connect(read_only=True) as con:
        mart = con.execute("select * from marts.daily_features order by series_id, date").df()
        seed = con.execute("select country, date from seeds.holidays").df()
        countries = dict(con.execute("select source, country from raw.sources").fetchall())
    if mart.empty:
        raise dg.Failure("marts.daily_features is empty: no series to forecast")
    frames: dict[str, list[pd.DataFrame]] = {name: [] for name in ML_TABLES}
    summaries = {}
    for source, part in mart.groupby("source", sort=True):
        holidays = holidays_from_seed(seed, countries.get(source))
        out, summary = run_source(source, part, holidays, run_id, context.log)
        for name, frame in out.items():
            frames[name].append(frame)
        summaries[source] = summary
    combined = {name: pd.concat(parts, ignore_index=True) for name, parts in frames.items()}
    with warehouse.connect() as con:
        write_tables(con, combined)
    for name in ML_TABLES:
        metadata = {"dagster/row_count": len(combined[name]), "run_id": run_id}
        if name == "backtest_metrics":
            metadata["mae_by_source_h1"] = summaries
            for source, summ in summaries.items():
                baselines = {k: v for k, v in summ["mae"].items() if k != "xgboost"}
                best = min(baselines, key=baselines.get)
                metadata[f"{source}_xgboost_mae"] = summ["mae"].get("xgboost")
                metadata[f"{source}_best_baseline"] = f"{best} {baselines[best]}"
        yield dg.MaterializeResult(asset_key=dg.AssetKey(["ml", name]), metadata=metadata)
