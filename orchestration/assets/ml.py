"""ML layer: rolling-origin backtest of the model zoo, champions, calibrated intervals,
coherent hierarchy, explanations, anomalies and run records (docs/forecasting.md).

All modelling lives in `ml/` (`ml.pipeline.run_source`); this module only reads the marts,
calls it per source, appends the frames to ml.* (every run kept: vintages by run_id) and
reports metadata and the anomaly check.

Environment (all optional):
- `CRIMECAST_ML_PROFILE`: `lean` (default; the sample run's time budget) or `full` (every
  model of the zoo, all history; what `make bench` uses). See `ml.zoo.PROFILES`.
- `CRIMECAST_ML_TRAIN_DAYS`: days of history each fit uses (default: 182 in `lean`, all in
  `full`).
"""

import os
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import duckdb
import pandas as pd
from dagster_dbt import get_asset_key_for_model

from ml.backtest import BacktestPlan
from ml.features import holidays_from_seed
from ml.pipeline import RunConfig, run_source
from orchestration.assets.dbt import crimecast_dbt_assets
from orchestration.config import settings
from orchestration.resources import WarehouseResource

DAILY_FEATURES = get_asset_key_for_model([crimecast_dbt_assets], "daily_features")
HOLIDAYS = get_asset_key_for_model([crimecast_dbt_assets], "holidays")
TEST_DAYS = 56  # default out-of-sample window when CRIMECAST_CUTOFF is not set
LEAN_TRAIN_DAYS = 182
ML_TABLES = {
    "forecasts": "Champion forecasts (area × category) for the days after the last full day, "
    "with the model that made each row and 80/95 % intervals; every run kept (vintages by "
    "run_id / as_of_date).",
    "forecasts_hierarchy": "Coherent forecasts at area × category, area, category and city level "
    "(bottom-up expected counts: the levels add up exactly), with intervals.",
    "backtest_predictions": "Out-of-sample predictions with actuals and intervals per series, "
    "model, split (cv / test), cutoff, horizon and day; model 'champion' = the chosen model.",
    "backtest_metrics": "MAE / RMSE / n / noise floor / interval coverage per source, split, "
    "cutoff, model and horizon.",
    "backtest_series_metrics": "MAE per series, split, cutoff, model and horizon.",
    "leaderboard": "Pooled ranking per source, split, horizon (cv = model choice, test = "
    "honest score), with coverage and the champion flags.",
    "interval_coverage": "Empirical coverage of the 80/95 % intervals per split, hierarchy "
    "level, model and horizon.",
    "champions": "The model chosen per series and horizon from the cv backtests, and why.",
    "anomalies": "Days whose actual count fell outside the 95 % band of the one-step-ahead "
    "out-of-sample champion forecast (every hierarchy level).",
    "forecast_explanations": "Top drivers (feature contributions, log-rate scale) of each "
    "forecast row made by an explainable model (XGBoost SHAP, GLM exact).",
    "feature_importance": "Global feature importance per run, model and horizon.",
    "model_runs": "One row per fitted model: parameters, training window, features, metrics, "
    "versioned artifact path.",
}
ANOMALY_CHECK = "no_anomalies_in_latest_window"


def new_run_id(dagster_run_id: str) -> str:
    """Sortable: the latest run has the largest id."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{dagster_run_id[:8]}"


def ml_profile() -> tuple[str, BacktestPlan]:
    profile = os.environ.get("CRIMECAST_ML_PROFILE", "").strip() or "lean"
    days = os.environ.get("CRIMECAST_ML_TRAIN_DAYS", "").strip()
    if days and not days.isdigit():
        raise ValueError(f"CRIMECAST_ML_TRAIN_DAYS={days!r} must be a whole number of days")
    train_days = int(days) if days else (LEAN_TRAIN_DAYS if profile == "lean" else None)
    return profile, BacktestPlan(train_days=train_days)


def write_tables(con: duckdb.DuckDBPyConnection, frames: dict[str, pd.DataFrame]) -> None:
    """Append every frame to ml.<name> in one transaction (tables created on first use; columns
    added by a newer version are added to an older table)."""
    con.execute("create schema if not exists ml")
    con.execute("begin transaction")
    try:
        for name, frame in frames.items():
            con.register("frame_to_write", frame)
            con.execute(
                f"create table if not exists ml.{name} as select * from frame_to_write limit 0"
            )
            have = {
                r[0]
                for r in con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = 'ml' and table_name = ?",
                    [name],
                ).fetchall()
            }
            types = dict(
                con.execute(
                    "select column_name, column_type from (describe frame_to_write)"
                ).fetchall()
            )
            for col in frame.columns:
                if col not in have:
                    con.execute(f'alter table ml.{name} add column "{col}" {types[col]}')
            con.execute(f"insert into ml.{name} by name select * from frame_to_write")
            con.unregister("frame_to_write")
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise


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
    check_specs=[
        dg.AssetCheckSpec(
            ANOMALY_CHECK,
            asset=dg.AssetKey(["ml", "anomalies"]),
            description="WARN when a day of the latest window (last 7 days) fell outside the "
            "95 % band of its out-of-sample one-step champion forecast.",
        )
    ],
    pool="warehouse_writer",
)
def ml_forecasts(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    s = settings()
    run_id = new_run_id(context.run_id)
    profile, plan = ml_profile()
    with warehouse.connect(read_only=True) as con:
        last_days = con.execute(
            "select source, max(date) from marts.daily_features group by source order by source"
        ).fetchall()
        seed = con.execute("select country, date from seeds.holidays").df()
        countries = dict(con.execute("select source, country from raw.sources").fetchall())
    if not last_days:
        raise dg.Failure("marts.daily_features is empty: no series to forecast")
    frames: dict[str, list[pd.DataFrame]] = {name: [] for name in ML_TABLES}
    summaries = {}
    started = datetime.now(UTC).replace(tzinfo=None)
    for source, last_day in last_days:
        cutoff = s.cutoff or (last_day - timedelta(days=TEST_DAYS - 1))
        config = RunConfig(
            run_id=run_id,
            test_cutoff=cutoff,
            horizon=s.horizon,
            profile=profile,
            plan=plan,
            artifacts_dir=s.artifacts_dir,
            started_at=started,
        )
        # only the history the profile's fits and features read (all of it without train_days)
        start = config.effective_plan().history_start(cutoff)
        with warehouse.connect(read_only=True) as con:
            part = con.execute(
                "select * from marts.daily_features where source = ? and date >= ? "
                "order by series_id, date",
                [source, start.date() if start is not None else date.min],
            ).df()
        context.log.info(
            f"{source}: {len(part):,} mart rows read"
            + (f" (from {start.date()}: train_days={plan.train_days})" if start else "")
        )
        holidays = holidays_from_seed(seed, countries.get(source))
        out, summary = run_source(source, part, holidays, config, log=context.log.info)
        for name, frame in out.items():
            frames[name].append(frame)
        summaries[source] = summary
    combined = {
        name: pd.concat([p for p in parts if len(p)] or parts, ignore_index=True)
        for name, parts in frames.items()
    }
    with warehouse.connect() as con:
        write_tables(con, combined)

    for name in ML_TABLES:
        metadata: dict = {"dagster/row_count": len(combined[name]), "run_id": run_id}
        if name in ("leaderboard", "backtest_metrics"):
            for source, summ in summaries.items():
                metadata[f"{source}_champion_test_mae"] = summ["champion_mae"]
                metadata[f"{source}_mean_28_test_mae"] = summ["mean_28_mae"]
                metadata[f"{source}_noise_floor_mae"] = summ["noise_floor_mae"]
                metadata[f"{source}_champion_coverage_80"] = summ["champion_coverage_80"]
                metadata[f"{source}_champion_coverage_95"] = summ["champion_coverage_95"]
        if name == "model_runs":
            metadata["profile"] = profile
            metadata["plan"] = {
                "horizons": list(plan.horizons),
                "n_cutoffs": plan.n_cutoffs,
                "window_days": plan.window,
                "train_days": plan.train_days,
            }
            metadata["artifacts_dir"] = dg.MetadataValue.path(str(s.artifacts_dir / run_id))
            runs = combined["model_runs"]
            metadata["params"] = {
                f"{r.source}/{r.model}/h{r.horizon}/{r.role}": r.params
                for r in runs.itertuples()
                if r.role == "backtest_test"
            }
            for source, summ in summaries.items():
                metadata[f"{source}_summary"] = summ
        if name == "champions":
            for source, summ in summaries.items():
                metadata[f"{source}_champions"] = summ["champions"]
        yield dg.MaterializeResult(asset_key=dg.AssetKey(["ml", name]), metadata=metadata)

    latest = {src: summ["anomalies_latest_window"] for src, summ in summaries.items()}
    rows = {src: summ["anomaly_window_rows"] for src, summ in summaries.items()}
    total = sum(latest.values())
    yield dg.AssetCheckResult(
        check_name=ANOMALY_CHECK,
        asset_key=dg.AssetKey(["ml", "anomalies"]),
        passed=total == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "run_id": run_id,
            "anomalies_in_latest_window": latest,
            "forecast_rows_in_latest_window": rows,
            "expected_by_chance_at_95": {k: round(0.05 * v, 1) for k, v in rows.items()},
            "window_days": 7,
        },
        description=(
            f"{total} day(s) outside the 95 % band in the latest window"
            if total
            else "no anomalies in the latest window"
        ),
    )
