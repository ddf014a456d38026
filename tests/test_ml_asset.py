"""The ml_forecasts asset on a tiny warehouse: every table, interval columns, coherent hierarchy,
vintages (the documented query), anomalies and the WARN asset check."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.features import build_features
from ml.metrics import outside_band_test
from orchestration.defs.incidents.ml import (
    ANOMALY_CHECK,
    ML_TABLES,
    anomaly_check_result,
    ml_forecasts,
)
from orchestration.resources import MLTablesResource, WarehouseResource


def ml_resources(warehouse: Path) -> dict:
    """The ML asset's resources on ``warehouse`` (its tables on DuckDB, as by default)."""
    return {"ml_tables": MLTablesResource(warehouse=WarehouseResource(database=str(warehouse)))}


REPO = Path(__file__).resolve().parents[1]
INTERVALS = ["forecast_lo_80", "forecast_hi_80", "forecast_lo_95", "forecast_hi_95"]


def _mart(days: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    dates = pd.date_range("2023-01-01", periods=days)
    weekday = np.array([0.7, 0.8, 1.0, 1.0, 1.1, 1.6, 1.4])[dates.dayofweek]
    parts = []
    for i, (area, cat) in enumerate([("A", "x"), ("A", "y"), ("B", "x"), ("B", "y")]):
        y = rng.poisson((1.0 + 0.8 * i) * weekday).astype(float)
        if i == 3:
            y[-3:] = 40.0  # a spike in the latest days: anomalies
        parts.append(pd.DataFrame({"series_id": f"town|{area}|{cat}", "ds": dates, "y": y}))
    f = build_features(pd.concat(parts, ignore_index=True))
    f["source"] = "town"
    return f.rename(columns={"ds": "date", "y": "incident_count"})


def _warehouse(path: Path, mart: pd.DataFrame) -> None:
    con = duckdb.connect(str(path))
    try:
        for schema in ("marts", "seeds", "raw"):
            con.execute(f"create schema if not exists {schema}")
        con.register("m", mart)
        con.execute("create or replace table marts.daily_features as select * from m")
        con.execute(
            "create or replace table seeds.holidays as "
            "select 'US' as country, date '2023-07-04' as date"
        )
        con.execute(
            "create or replace table raw.sources as select 'town' as source, 'US' as country"
        )
    finally:
        con.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs: data through day N, then through day N + 1 (two vintages)."""
    folder = tmp_path_factory.mktemp("mlasset")
    warehouse = folder / "crimecast.duckdb"
    full = _mart(301)
    results = []
    with pytest.MonkeyPatch.context() as mp:
        # the asset works on its resource's warehouse whatever the environment says
        mp.setenv("CRIMECAST_WAREHOUSE", str(folder / "elsewhere" / "crimecast.duckdb"))
        for last in (pd.Timestamp("2023-10-27"), pd.Timestamp("2023-10-28")):
            _warehouse(warehouse, full[full["date"] <= last])
            res = dg.materialize(
                [ml_forecasts],
                resources=ml_resources(warehouse),
                # explicit settings: the MLConfig defaults are the environment at import
                run_config={
                    "ops": {
                        "ml_forecasts": {
                            "config": {
                                "cutoff": "",
                                "cutoffs": {},
                                "horizon": 28,
                                "profile": "lean",
                            }
                        }
                    }
                },
            )
            assert res.success
            results.append(res)
    return warehouse, results


def _q(warehouse: Path, sql: str, params=None):
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).df()
    finally:
        con.close()


def test_every_table_is_written_with_intervals(runs):
    warehouse, _ = runs
    for name in ML_TABLES:
        n = _q(warehouse, f"select count(*) as n from ml.{name}")["n"][0]
        assert n > 0, f"ml.{name} is empty"
    fc = _q(warehouse, "select * from ml.forecasts")
    assert fc[INTERVALS].notna().all().all()
    assert (fc["forecast_lo_95"] <= fc["forecast_lo_80"]).all()
    assert (fc["forecast_lo_80"] <= fc["forecast_hi_80"]).all()
    assert (fc["forecast_hi_80"] <= fc["forecast_hi_95"]).all()
    assert (fc[INTERVALS] == fc[INTERVALS].round()).all().all()  # integer bounds
    assert set(fc["horizon"]) == set(range(1, 29)) and fc["model"].notna().all()
    cov = _q(warehouse, "select * from ml.interval_coverage where split = 'test'")
    assert {0.8, 0.95} <= set(cov["nominal"]) and cov["coverage"].between(0, 1).all()
    board = _q(warehouse, "select * from ml.leaderboard where split = 'test'")
    assert {"champion", "mean_28", "xgboost"} <= set(board["model"])
    # every score carries its day-block bootstrap interval (issue 14)
    for scores in (board, _q(warehouse, "select * from ml.backtest_metrics")):
        assert scores[["mae_lo", "mae_hi"]].notna().all().all()
        assert ((scores["mae_lo"] <= scores["mae"]) & (scores["mae"] <= scores["mae_hi"])).all()
        assert (scores["mae_lo"] < scores["mae_hi"]).any()
    assert {1, 7, 28} <= set(board["horizon"])
    runs_ = _q(warehouse, "select * from ml.model_runs")
    assert runs_["artifact_path"].map(lambda p: Path(p).exists()).all()
    artifacts = (warehouse.parent / "artifacts").resolve()
    assert runs_["artifact_path"].map(lambda p: Path(p).is_relative_to(artifacts)).all()
    assert not (warehouse.parent / "elsewhere").exists()
    assert {"backtest_test", "operational"} <= set(runs_["role"])
    status = _q(warehouse, "select * from ml.source_status order by run_id")
    assert list(status["status"]) == ["forecast", "forecast"] and set(status["source"]) == {"town"}
    assert list(status["test_cutoff"].astype(str)) == ["2023-09-02", "2023-09-03"]  # last 56 days
    assert status["skipped_reason"].isna().all() and (status["history_days"] >= 300).all()


def test_every_score_has_its_difference_to_the_best_median_baseline_on_validation(runs):
    """baseline_model is chosen per horizon on the cv rows (the same for cv and test rows);
    diff_baseline is the MAE difference on the common rows, inside its paired interval."""
    from ml.metrics import best_on_validation
    from ml.zoo import MEDIAN_BASELINES

    warehouse, _ = runs
    run = _q(warehouse, "select max(run_id) as r from ml.backtest_metrics")["r"][0]
    for table in ("backtest_metrics", "leaderboard"):
        m = _q(warehouse, f"select * from ml.{table} where run_id = ?", [run])
        assert m["baseline_model"].notna().all() and m["diff_baseline"].notna().all()
        assert set(m["baseline_model"]) <= set(MEDIAN_BASELINES)
        assert (m.groupby("horizon")["baseline_model"].nunique() == 1).all()
        assert ((m["diff_lo"] <= m["diff_baseline"]) & (m["diff_baseline"] <= m["diff_hi"])).all()
        own = m[m["model"] == m["baseline_model"]]
        assert len(own) and (own[["diff_baseline", "diff_lo", "diff_hi"]] == 0).all().all()
        assert (m["diff_lo"] < m["diff_hi"]).any()
    preds = _q(
        warehouse,
        "select series_id, date::timestamp as ds, cutoff, split, horizon, model, prediction, "
        "actual from ml.backtest_predictions where run_id = ?",
        [run],
    )
    chosen = best_on_validation(preds[preds["split"] == "cv"], MEDIAN_BASELINES)
    got = m.drop_duplicates("horizon").set_index("horizon")["baseline_model"]
    assert got.to_dict() == chosen.set_index("horizon")["baseline_model"].to_dict()
    # the champion's test difference, recomputed from the stored predictions
    champ = m[(m["split"] == "test") & (m["model"] == "champion")].set_index("horizon")
    for h, row in champ.iterrows():
        at = preds[(preds["split"] == "test") & (preds["horizon"] == h)]
        wide = at.pivot_table(
            index=["series_id", "ds"], columns="model", values="prediction", aggfunc="first"
        )
        actual = at.groupby(["series_id", "ds"])["actual"].first()
        both = wide[["champion", row["baseline_model"]]].dropna().join(actual).dropna()
        err = both.drop(columns="actual").sub(both["actual"], axis=0).abs().mean()
        assert row["diff_baseline"] == pytest.approx(err["champion"] - err[row["baseline_model"]])


def test_hierarchy_is_coherent_in_the_warehouse(runs):
    warehouse, _ = runs
    bad = _q(
        warehouse,
        """
        with b as (select * from ml.forecasts_hierarchy where level = 'area_category'),
        sums as (
            select run_id, date, 'area' as level, area as k, sum(forecast) as s
            from b group by all
            union all select run_id, date, 'category', category, sum(forecast) from b group by all
            union all select run_id, date, 'city', source, sum(forecast) from b group by all
        ),
        agg as (
            select run_id, date, level,
                   case level when 'area' then area when 'category' then category
                              else source end as k, forecast
            from ml.forecasts_hierarchy where level <> 'area_category'
        )
        select count(*) as n_bad, count(agg.k) as n_matched from sums
        left join agg using (run_id, date, level, k)
        where agg.k is null or abs(agg.forecast - sums.s) > 1e-9
        """,
    )
    assert bad["n_bad"][0] == 0
    fc = _q(
        warehouse,
        "select f.forecast_mean, h.forecast from ml.forecasts f join ml.forecasts_hierarchy h "
        "using (run_id, series_id, date) where h.level = 'area_category'",
    )
    assert len(fc) > 0 and np.allclose(fc["forecast_mean"], fc["forecast"])


def _vintage_sql() -> str:
    text = (REPO / "docs" / "forecasting.md").read_text()
    match = re.search(r"<!-- vintage-query -->\s*```sql\n(.*?)```", text, re.S)
    assert match, "docs/forecasting.md lost its vintage query"
    return match.group(1)


def test_the_documented_vintage_query(runs):
    warehouse, _ = runs
    sql = _vintage_sql()
    first = _q(warehouse, sql, {"as_of_date": "2023-10-27", "target_date": "2023-11-05"})
    second = _q(warehouse, sql, {"as_of_date": "2023-10-28", "target_date": "2023-11-05"})
    assert len(first) == len(second) == 4  # one row per series
    assert set(first["horizon"]) == {9} and set(second["horizon"]) == {8}
    assert first["run_id"].nunique() == 1 and second["run_id"].nunique() == 1
    assert first["run_id"][0] < second["run_id"][0]  # two vintages, both kept


def test_a_write_that_fails_leaves_every_ml_table_as_it_was(runs, tmp_path):
    """The run's frames go to ml.* in one transaction (ml/tables.py): when the last table's
    append fails (an older ml.source_status whose column cannot take the new rows), no table
    keeps a row of the run."""
    warehouse, _ = runs
    copy = tmp_path / "crimecast.duckdb"
    shutil.copy(warehouse, copy)
    con = duckdb.connect(str(copy))
    try:
        con.execute("create or replace table ml.source_status (run_id varchar, history_days date)")
    finally:
        con.close()
    before = {n: _q(copy, f"select count(*) as n from ml.{n}")["n"][0] for n in ML_TABLES}
    config = {"cutoff": "", "cutoffs": {}, "horizon": 28, "profile": "lean"}
    res = dg.materialize(
        [ml_forecasts],
        resources=ml_resources(copy),
        run_config={"ops": {"ml_forecasts": {"config": config}}},
        raise_on_error=False,
    )
    assert not res.success
    (failure,) = res.get_step_failure_events()
    cause = failure.step_failure_data.error.cause
    assert "history_days" in cause.message  # the append failed, not the modelling
    after = {n: _q(copy, f"select count(*) as n from ml.{n}")["n"][0] for n in ML_TABLES}
    assert after == before and before["forecasts"] > 0


def test_anomalies_and_the_warn_check(runs):
    warehouse, results = runs
    anomalies = _q(warehouse, "select * from ml.anomalies")
    spike = anomalies[anomalies["series_id"] == "town|B|y"]
    assert (spike["in_latest_window"] & (spike["direction"] == "above")).any()
    assert (anomalies["actual"] > anomalies["forecast_hi_95"]).sum() + (
        anomalies["actual"] < anomalies["forecast_lo_95"]
    ).sum() == len(anomalies)
    checks = []
    for res in results:
        evals = res.get_asset_check_evaluations()
        check = next(e for e in evals if e.check_name == ANOMALY_CHECK)
        assert check.severity == dg.AssetCheckSeverity.WARN
        assert check.asset_key == dg.AssetKey(["ml", "anomalies"])
        meta = {k: v.value for k, v in check.metadata.items()}
        # the count beside what chance gives (5 % of the series-days checked), in both places
        checked = meta["town/series_days_checked"]
        assert checked > 0 and meta["town/expected_by_chance"] == pytest.approx(0.05 * checked)
        assert f"{meta['town/anomalies']} of {checked} series-days" in check.description
        assert f"{meta['town/expected_by_chance']:g} expected by chance" in check.description
        assert check.passed == (meta["town/p_value"] >= meta["alpha"])
        checks.append(check)
    # the second run's window holds the three spike days at four levels each: far above chance
    assert not checks[-1].passed and "ABOVE chance" in checks[-1].description


@pytest.mark.parametrize(
    ("outside", "checked", "passed"),
    [
        (0, 63, True),
        (3, 63, True),  # 3.15 expected
        (8, 63, True),  # p = 0.013 > 0.01
        (13, 63, False),  # p ≈ 1e-5
        (370, 7400, True),  # the "about what chance gives"
        (430, 7400, False),
        (0, 0, True),  # nothing checked: nothing to say
    ],
)
def test_the_anomaly_check_warns_only_above_chance(outside, checked, passed):
    res = anomaly_check_result({"town": outside}, {"town": checked}, run_id="r")
    assert res.passed is passed and res.severity == dg.AssetCheckSeverity.WARN
    assert res.metadata["town/expected_by_chance"].value == pytest.approx(0.05 * checked)
    assert f"{outside} of {checked} series-days" in res.description


def test_the_anomaly_check_splits_its_false_alarm_rate_over_sources():
    # 9 of 70 (p ≈ 0.008) is above chance for one source at 0.01, not with two at 0.005 each
    assert outside_band_test(9, 70, level=0.95, alpha=0.01)["p_value"] == pytest.approx(
        0.008, abs=5e-4
    )
    assert not anomaly_check_result({"a": 9}, {"a": 70}, "r").passed
    two = anomaly_check_result({"a": 9, "b": 3}, {"a": 70, "b": 63}, "r")
    assert two.passed and two.metadata["alpha"].value == pytest.approx(0.005)
    assert anomaly_check_result({}, {}, "r").passed  # no source forecast
