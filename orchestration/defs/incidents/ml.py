"""ML layer: rolling-origin backtest of the model zoo, champions, calibrated intervals,
coherent hierarchy, explanations, anomalies and run records (docs/forecasting.md).

All modelling lives in `ml/` (`ml.pipeline.run_source`; the minimum-history rules in
`ml.history`); this module only reads the marts, decides per source (before fitting) whether
its data holds the backtest plan, calls `run_source` for those that do, appends the frames to
ml.* (every run kept: vintages by run_id; reads and writes through ``ml.tables``), records
every source's status in ml.source_status and reports metadata and the anomaly check.

Run settings: `MLConfig` (the Dagster launchpad), whose defaults are the environment at load
time (`orchestration.config.ml_settings`: CRIMECAST_CUTOFF, CRIMECAST_HORIZON,
CRIMECAST_ML_PROFILE, CRIMECAST_ML_TRAIN_DAYS); `crimecast run` passes the values of its own
environment (`ml_run_config`).
"""

from datetime import UTC, date, datetime

import dagster as dg
import pandas as pd
import pyarrow as pa
from dagster_dbt import get_asset_key_for_model
from pydantic import Field

from ml.backtest import profile_plan
from ml.features import holidays_from_seed
from ml.history import MAX_HORIZON, assess
from ml.metrics import outside_band_test
from ml.pipeline import ANOMALY_LEVEL, ANOMALY_WINDOW_DAYS, RunConfig, run_source
from orchestration.config import MLSettings, SettingsError, artifacts_dir, check_ml, ml_settings
from orchestration.defs.dbt import crimecast_dbt_assets
from orchestration.defs.incidents.raw import INCIDENT_PARTITIONS
from orchestration.resources import MLTablesResource

DAILY_FEATURES = get_asset_key_for_model([crimecast_dbt_assets], "daily_features")
HOLIDAYS = get_asset_key_for_model([crimecast_dbt_assets], "holidays")
ML_TABLES = {
    "forecasts": "Champion forecasts (area × category) for the days after the last full day, "
    "with the model that made each row and 80/95 % intervals; every run kept (vintages by "
    "run_id / as_of_date).",
    "forecasts_hierarchy": "Coherent forecasts at area × category, area, category and city level "
    "(bottom-up expected counts: the levels add up exactly), with intervals.",
    "backtest_predictions": "Out-of-sample predictions with actuals and intervals per series, "
    "model, split (cv / test), cutoff, horizon and day; model 'champion' = the chosen model.",
    "backtest_metrics": "MAE / RMSE / n / Poisson reference / interval coverage per source, split, "
    "cutoff, model and horizon, with bootstrap intervals of the MAE and of its difference to the "
    "best median baseline on validation.",
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
    "source_status": "One row per run and source: forecast (with its test cutoff) or skipped "
    "(with the one-line reason: too little history after cleaning, a cutoff that does not fit "
    "the data), the days of history it has and needs (ml/history.py).",
}
#: the daily ML's input (``ml.tables.Tables.read``, params: source, first day): only the
#: history the profile's fits and features read
DAILY_INPUT = (
    "select * from marts.daily_features where source = ? and date >= ? order by series_id, date"
)
ANOMALY_CHECK = "anomalies_within_chance"
#: false-alarm rate of the anomaly check per run (split over the sources: Bonferroni)
ANOMALY_ALPHA = 0.01

# The defaults shown in the launchpad: the environment when the code is loaded. A bad value
# stops the load with a one-line SettingsError (`crimecast run` reports it before that).
_ENV = ml_settings()


class MLConfig(dg.Config):
    """Run settings of the forecasting step; the defaults come from the environment."""

    cutoff: str = Field(
        default=str(_ENV.cutoff or ""),
        description="First test day (YYYY-MM-DD) for every source whose data it fits; the "
        "others use their default (the last 56 days, or the horizon when longer). "
        "CRIMECAST_CUTOFF=2018-06-01.",
    )
    cutoffs: dict[str, str] = Field(
        default={k: str(v) for k, v in _ENV.cutoffs.items()},
        description="First test day per source, e.g. {boston: 2018-06-01}; a source whose data "
        "it does not fit is skipped with the reason. CRIMECAST_CUTOFF=boston=2018-06-01,...",
    )
    horizon: int = Field(
        default=_ENV.horizon,
        description=f"Days forecast after the last full day (1 … {MAX_HORIZON}). "
        "CRIMECAST_HORIZON.",
    )
    profile: str = Field(
        default=_ENV.profile,
        description="lean (baselines + a short XGBoost) or full (the whole zoo). "
        "CRIMECAST_ML_PROFILE.",
    )
    sources: list[str] = Field(
        default=[],
        description="Incident sources to forecast (empty: the city of the run's partition in "
        "a per-city run, else every source in the marts).",
    )
    train_days: int | None = Field(
        default=_ENV.train_days,
        description="Days of history before each cutoff that every fit uses (empty: 182 in "
        "lean, all history in full). CRIMECAST_ML_TRAIN_DAYS.",
    )

    def settings(self) -> MLSettings:
        """Validated (:class:`orchestration.config.SettingsError` names the field)."""
        return check_ml(
            cutoff=self.cutoff,
            cutoffs=self.cutoffs,
            horizon=self.horizon,
            profile=self.profile,
            train_days=self.train_days,
        )


def ml_run_config(s: MLSettings, sources: list[str] | None = None) -> dict:
    """The `ops` run config of `ml_forecasts` for settings ``s`` (what `crimecast run` passes,
    so that the run uses the environment of the call, not that of the import), forecasting
    ``sources`` only when given."""
    config = {
        "cutoff": str(s.cutoff or ""),
        "cutoffs": {k: str(v) for k, v in s.cutoffs.items()},
        "horizon": s.horizon,
        "profile": s.profile,
        "train_days": s.train_days,
    }
    if sources is not None:
        config["sources"] = list(sources)
    return {"ml_forecasts": {"config": config}}


def run_sources(context: dg.AssetExecutionContext, config: MLConfig) -> set[str] | None:
    """The sources this run forecasts: ``config.sources``, else the city of a run launched for
    one partition of the raw incident assets (tag ``dagster/partition``), else all (None)."""
    if config.sources:
        return set(config.sources)
    city = context.run.tags.get("dagster/partition")
    return {city} if city in INCIDENT_PARTITIONS.get_partition_keys() else None


def numeric_metadata(source: str, summ: dict, forecasts: pd.DataFrame | None) -> dict:
    """One number per key (``boston/champion_mae_h1``, ``boston/coverage_80_h7``,
    ``boston/n_series``, ...) so that the Plots tab of the asset charts them across runs."""
    out: dict = {}
    for h, mae in summ["champion_mae"].items():
        out[f"{source}/champion_mae_h{h}"] = float(mae)
        out[f"{source}/mean_28_mae_h{h}"] = float(summ["mean_28_mae"].get(h, float("nan")))
        out[f"{source}/coverage_80_h{h}"] = float(summ["champion_coverage_80"].get(h, float("nan")))
        out[f"{source}/coverage_95_h{h}"] = float(summ["champion_coverage_95"].get(h, float("nan")))
    if forecasts is not None and len(forecasts):
        mine = forecasts[forecasts["source"] == source]
        out[f"{source}/n_series"] = int(mine["series_id"].nunique())
    last = pd.Timestamp(summ["last_day"])
    out[f"{source}/as_of"] = dg.MetadataValue.timestamp(last.tz_localize("UTC").timestamp())
    return out


def new_run_id(dagster_run_id: str) -> str:
    """Sortable: the latest run has the largest id."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{dagster_run_id[:8]}"


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["ml", name],
            description=desc,
            group_name="ml",
            deps=[DAILY_FEATURES, HOLIDAYS],
            kinds={"python", "xgboost", "duckdb"},
            owners=["team:forecasting"],
            tags={"domain": "incidents", "layer": "ml"},
        )
        for name, desc in ML_TABLES.items()
    ],
    check_specs=[
        dg.AssetCheckSpec(
            ANOMALY_CHECK,
            asset=dg.AssetKey(["ml", "anomalies"]),
            description="WARN when more series-days of the latest window (last 7 days) fell "
            "outside the 95 % band of their out-of-sample one-step champion forecast than "
            "chance gives under calibration (5 % of those checked; one-sided binomial test at "
            f"{ANOMALY_ALPHA:g} per run, split over the sources).",
        )
    ],
    pool="warehouse_writer",
)
def ml_forecasts(context: dg.AssetExecutionContext, config: MLConfig, ml_tables: MLTablesResource):
    try:
        ms = config.settings()
    except SettingsError as exc:
        raise dg.Failure(description=f"ml_forecasts config: {exc}") from None
    run_id = new_run_id(context.run_id)
    profile, plan = ms.profile, profile_plan(ms.profile, ms.train_days)
    full_plan = plan.covering(ms.horizon)
    artifacts = artifacts_dir(ml_tables.warehouse.path)
    with ml_tables.open() as tables:
        span_rows = tables.read(
            "select source, min(date) as first_day, max(date) as last_day "
            "from marts.daily_features where incident_count is not null group by source"
        )
        seed = tables.read("select country, date from seeds.holidays")
        countries = dict(tables.read("select source, country from raw.sources").itertuples(False))
    spans = {r.source: (r.first_day.date(), r.last_day.date()) for r in span_rows.itertuples()}
    sources = sorted(set(spans) | set(countries))
    wanted = run_sources(context, config)
    ignored = sorted(set(ms.cutoffs) - set(sources))
    if wanted is not None:
        # a per-city run forecasts its city only (the others keep their latest forecasts)
        sources = [src for src in sources if src in wanted]
    if not sources:
        raise dg.Failure(
            "marts.daily_features is empty and raw.sources lists no source: nothing to forecast"
        )
    # the minimum-history rules (ml/history.py), for every source before anything is fitted
    statuses = {
        source: assess(
            source,
            *spans.get(source, (None, None)),
            full_plan,
            cutoff=ms.cutoffs.get(source),
            global_cutoff=ms.cutoff,
        )
        for source in sources
    }
    if ignored:
        context.log.warning(f"cutoffs for sources not in the warehouse, ignored: {ignored}")
    for st in statuses.values():
        (context.log.info if st.forecast else context.log.warning)(st.line())
    frames: dict[str, list[pd.DataFrame]] = {name: [] for name in ML_TABLES}
    summaries = {}
    started = datetime.now(UTC).replace(tzinfo=None)
    for source, st in statuses.items():
        if not st.forecast:
            continue
        run = RunConfig(
            run_id=run_id,
            test_cutoff=st.test_cutoff,
            horizon=ms.horizon,
            profile=profile,
            plan=plan,
            artifacts_dir=artifacts,
            started_at=started,
        )
        # only the history the profile's fits and features read (all of it without train_days)
        start = run.effective_plan().history_start(st.test_cutoff)
        with ml_tables.open() as tables:
            part = tables.read(
                DAILY_INPUT, [source, start.date() if start is not None else date.min]
            )
        context.log.info(
            f"{source}: {len(part):,} mart rows read"
            + (f" (from {start.date()}: train_days={plan.train_days})" if start else "")
        )
        holidays = holidays_from_seed(seed, countries.get(source))
        out, summary = run_source(source, part, holidays, run, log=context.log.info)
        for name, frame in out.items():
            frames[name].append(frame)
        summaries[source] = summary
    frames["source_status"] = [_status_frame(statuses.values(), run_id, started, ms)]
    combined = {
        name: pd.concat([p for p in parts if len(p)] or parts, ignore_index=True)
        for name, parts in frames.items()
        if parts  # a table no source wrote this run (every source skipped) gets no rows
    }
    with ml_tables.open(write=True) as tables:
        tables.append(combined)

    status_meta = _status_metadata(statuses, ignored)
    for name in ML_TABLES:
        metadata: dict = {
            "dagster/row_count": len(combined[name]) if name in combined else 0,
            "run_id": run_id,
        }
        if name in ("forecasts", "source_status"):
            metadata["source_status"] = {src: st.line() for src, st in statuses.items()}
        if name == "source_status":
            metadata.update(status_meta)
        if name in ("leaderboard", "backtest_metrics"):
            for source, summ in summaries.items():
                metadata[f"{source}_champion_test_mae"] = summ["champion_mae"]
                metadata[f"{source}_mean_28_test_mae"] = summ["mean_28_mae"]
                metadata[f"{source}_noise_floor_mae"] = summ["noise_floor_mae"]
                metadata[f"{source}_champion_coverage_80"] = summ["champion_coverage_80"]
                metadata[f"{source}_champion_coverage_95"] = summ["champion_coverage_95"]
                metadata.update(numeric_metadata(source, summ, combined.get("forecasts")))
        if name == "model_runs":
            metadata["profile"] = profile
            metadata["plan"] = {
                "horizons": list(plan.horizons),
                "n_cutoffs": plan.n_cutoffs,
                "window_days": plan.window,
                "train_days": plan.train_days,
            }
            metadata["artifacts_dir"] = dg.MetadataValue.path(str(artifacts / run_id))
            runs = combined.get("model_runs", pd.DataFrame(columns=["role"]))
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

    yield anomaly_check_result(
        {src: summ["anomalies_latest_window"] for src, summ in summaries.items()},
        {src: summ["anomaly_window_rows"] for src, summ in summaries.items()},
        run_id,
    )


def anomaly_check_result(
    outside: dict[str, int], checked: dict[str, int], run_id: str
) -> dg.AssetCheckResult:
    """The anomaly check of a run from the count of series-days outside the 95 % band and of
    those checked in the latest window, per source: WARN only for a source whose count is
    significantly above chance (:func:`ml.metrics.outside_band_test`, ``ANOMALY_ALPHA`` split
    over the sources, so that a run of several calibrated sources warns at most that often)."""
    alpha = ANOMALY_ALPHA / max(len(checked), 1)
    tests = {
        src: outside_band_test(outside[src], checked[src], ANOMALY_LEVEL, alpha)
        for src in sorted(checked)
    }
    metadata: dict = {
        "run_id": run_id,
        "window_days": ANOMALY_WINDOW_DAYS,
        "band": ANOMALY_LEVEL,
        "alpha": alpha,
    }
    lines = []
    for src, t in tests.items():
        metadata[f"{src}/anomalies"] = t["outside"]
        metadata[f"{src}/series_days_checked"] = t["checked"]
        metadata[f"{src}/expected_by_chance"] = t["expected"]
        metadata[f"{src}/chance_upper"] = t["chance_upper"]
        metadata[f"{src}/p_value"] = t["p_value"]
        verdict = "ABOVE chance" if t["above_chance"] else "within chance"
        lines.append(
            f"{src}: {t['outside']} of {t['checked']} series-days outside the 95 % band, "
            f"{t['expected']:g} expected by chance (up to {t['chance_upper']} at "
            f"{1 - alpha:.4g}), p = {t['p_value']:.2g}: {verdict}"
        )
    above = [src for src, t in tests.items() if t["above_chance"]]
    if not tests:
        description = "no source was forecast in this run (ml.source_status says why)"
    else:
        head = (
            f"more anomalies than chance gives in the latest window: {', '.join(above)}"
            if above
            else "anomalies in the latest window within what chance gives"
        )
        description = head + ". " + "; ".join(lines)
    return dg.AssetCheckResult(
        check_name=ANOMALY_CHECK,
        asset_key=dg.AssetKey(["ml", "anomalies"]),
        passed=not above,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=metadata,
        description=description,
    )


def _status_frame(statuses, run_id: str, started: datetime, ms: MLSettings) -> pd.DataFrame:
    """ml.source_status rows, typed explicitly (a column may be all NULL in a run)."""
    rows = [st.to_row() for st in statuses]
    text = pd.StringDtype()
    day = pd.ArrowDtype(pa.date32())

    def col(name, dtype):
        return pd.Series([r[name] for r in rows], dtype=dtype)

    return pd.DataFrame(
        {
            "run_id": pd.Series([run_id] * len(rows), dtype=text),
            "created_at": pd.Series([started] * len(rows), dtype="datetime64[us]"),
            "source": col("source", text),
            "status": col("status", text),
            "skipped_reason": col("skipped_reason", text),
            "first_day": col("first_day", day),
            "last_day": col("last_day", day),
            "history_days": col("history_days", "Int64"),
            "min_history_days": col("min_history_days", "Int64"),
            "test_cutoff": col("test_cutoff", day),
            "cutoff_setting": col("cutoff_setting", text),
            "cutoff_note": col("cutoff_note", text),
            "horizon": pd.Series([ms.horizon] * len(rows), dtype="Int64"),
            "profile": pd.Series([ms.profile] * len(rows), dtype=text),
        }
    )


def _status_metadata(statuses: dict, ignored: list[str]) -> dict:
    """Per source: status and reason (text), days of history it has and needs (numbers)."""
    out: dict = {
        "sources_forecast": sum(st.forecast for st in statuses.values()),
        "sources_skipped": sum(not st.forecast for st in statuses.values()),
    }
    for src, st in statuses.items():
        out[f"{src}_status"] = st.status
        out[f"{src}_history_days"] = st.history_days
        out[f"{src}_min_history_days"] = st.min_history_days
        out[f"{src}_test_cutoff"] = str(st.test_cutoff) if st.test_cutoff else "none"
        if st.skipped_reason or st.cutoff_note:
            out[f"{src}_reason"] = st.skipped_reason or st.cutoff_note
    if ignored:
        out["cutoffs_ignored"] = ", ".join(ignored)
    return out
