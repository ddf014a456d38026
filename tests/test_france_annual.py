"""France dbt marts and annual models on the sample: rate arithmetic, leak-free features (dbt
and Python), the département–région check, metrics, forecasts and intervals."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import run_dbt

from ingest.france import load_france
from ml import annual
from ml.tables import DuckDBTables
from serving.publish import publish_copy

REPO = Path(__file__).resolve().parents[1]
SELECT = "france_regions france_departements +path:models/marts/france"
FAST_MODELS = ["last_value", "drift", "holt", "ridge"]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """Sample files → raw (loader) → dbt build of the France models (own target path)."""
    root = tmp_path_factory.mktemp("france")
    db = root / "crimecast.duckdb"  # the catalog must be named like the project's warehouse
    con = duckdb.connect(str(db))
    load_france(
        con,
        {"regional": None, "departmental": None},
        sample_dir=root / "sample",
        download_dir=root / "dl",
    )
    con.close()
    target = root / "target"
    # in this process, on the session's parsed manifest (tests/conftest.py)
    proc = run_dbt(db, "build", "--quiet", "--select", SELECT, target=target)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    return db, target / "compiled" / "crimecast" / "models"


def _compiled(models: Path, name: str) -> str:
    return next(models.rglob(f"{name}.sql")).read_text()


def test_rate_per_100k_is_count_over_population(warehouse):
    db, _ = warehouse
    con = duckdb.connect(str(db), read_only=True)
    raw = con.execute(
        "select nombre, insee_pop from raw.france_departmental "
        "where code_departement = '75' and annee = 2019 and indicateur = 'Escroqueries'"
    ).fetchone()
    mart = con.execute(
        "select recorded_count, population, rate_per_100k, geo_name, region_name "
        "from marts.france_annual_rates where geo_level = 'departement' and geo_code = '75' "
        "and year = 2019 and indicator = 'Escroqueries'"
    ).fetchone()
    con.close()
    assert mart[:2] == raw
    assert mart[2] == pytest.approx(raw[0] / raw[1] * 100_000)
    assert mart[3:] == ("Paris", "Île-de-France")


def test_feature_mart_does_not_use_the_target_year(warehouse):
    """Change every value of the target year; that year's features must not move (they
    would if a window or a context included the target year), while the next year's lag_1
    must (the test is sensitive)."""
    db, models = warehouse
    sql = _compiled(models, "france_annual_features")
    feature_cols = [
        "lag_1", "lag_2", "lag_3", "roll_mean_3", "trend_slope_3", "year_index",
        "n_past_years", "count_lag_1", "population_lag_1", "parent_rate_lag_1",
        "parent_log_growth_lag_1", "national_log_growth_lag_1", "indicator_code",
        "geo_code_index",
    ]  # fmt: skip
    query = f"select * from ({sql}) where year in (2022, 2023) order by series_id, year"
    con = duckdb.connect(str(db))
    before = con.execute(query).df()
    con.execute("begin transaction")
    con.execute(
        "update intermediate.int_france__annual_series "
        "set recorded_count = recorded_count * 10 + 7, rate_per_100k = rate_per_100k * 10 + 7 "
        "where year = 2022"
    )
    after = con.execute(query).df()
    con.execute("rollback")
    con.close()
    b22, a22 = (f.loc[f["year"] == 2022].reset_index(drop=True) for f in (before, after))
    pd.testing.assert_frame_equal(b22[feature_cols], a22[feature_cols])
    assert not np.allclose(b22["y"], a22["y"])  # the target itself did change
    b23, a23 = (f.loc[f["year"] == 2023].reset_index(drop=True) for f in (before, after))
    assert not np.allclose(b23["lag_1"], a23["lag_1"])


def test_departement_region_check_flags_disagreements(warehouse):
    db, models = warehouse
    sql = _compiled(models, "france_departement_region_check")
    con = duckdb.connect(str(db))
    status = dict(con.execute(f"select status, count(*) from ({sql}) group by 1").fetchall())
    # the sample's regions are the sums of its départements; AFD is published by region only
    assert set(status) == {"match", "region_only"}
    assert status["region_only"] == 18 * 9
    con.execute("begin transaction")
    con.execute(  # +10 % on one département: beyond the 0.5 % tolerance
        "update raw.france_departmental set nombre = cast(nombre * 1.1 + 1 as bigint) "
        "where code_departement = '75' and annee = 2020 and indicateur = 'Escroqueries'"
    )
    con.execute(  # +1 on a large count: within the tolerance
        "update raw.france_departmental set nombre = nombre + 1 "
        "where code_departement = '59' and annee = 2021 and indicateur = 'Vols de véhicules'"
    )
    flagged = con.execute(
        f"select code_region, year, indicator, status from ({sql}) "
        "where status not in ('match', 'region_only') order by 1"
    ).fetchall()
    con.execute("rollback")
    con.close()
    assert flagged == [
        ("11", 2020, "Escroqueries", "disagree"),
        ("32", 2021, "Vols de véhicules", "within_tolerance"),
    ]


@pytest.fixture(scope="module")
def features(warehouse):
    db, _ = warehouse
    con = duckdb.connect(str(db), read_only=True)
    feats = annual.load_features(DuckDBTables(con))
    con.close()
    return feats


def test_pairs_and_models_ignore_future_values(features):
    """Python side: the pairs of origin 2020 and the model predictions from them do not change
    when every value after 2020 changes."""
    regional = features.loc[features["geo_level"] == "region"]
    changed = regional.copy()
    future = changed["year"] > 2020
    changed.loc[future, ["y", "recorded_count"]] *= 3.0
    changed.loc[changed["year"] > 2021, ["lag_1", "lag_2", "roll_mean_3"]] *= 3.0
    cols = ["series_id", "origin", "horizon", "last", "lr_1", "lr_roll_3", "lr_drift"]
    p1 = annual.make_pairs(regional, [1, 2, 3], origins=[2020], keep_unobserved=True)
    p2 = annual.make_pairs(changed, [1, 2, 3], origins=[2020], keep_unobserved=True)
    pd.testing.assert_frame_equal(p1[cols], p2[cols])
    assert not np.allclose(p1["y"], p2["y"])
    for model in (annual.Drift(0.5), annual.HoltDamped(0.9, 0.1, 0.5)):
        preds = []
        for feats in (regional, changed):
            hist = annual.history(feats)
            if hasattr(model, "observe"):
                model.observe(hist)  # the full history, future included
            pairs = annual.make_pairs(feats, [1, 2, 3], origins=[2020], keep_unobserved=True)
            preds.append(model.fit(pairs, pairs["y"]).predict(pairs))
        np.testing.assert_allclose(preds[0], preds[1])


def test_score_metrics():
    frame = pd.DataFrame(
        {
            "y": [100.0, 200.0, 0.0],
            "prediction": [110.0, 180.0, 5.0],
            "actual_count": [10, 20, 0],
            "prediction_count": [11.0, 18.0, 0.5],
        }
    )
    s = annual.score(frame)
    assert s["mae"] == pytest.approx(35 / 3)
    assert s["rmse"] == pytest.approx(np.sqrt((100 + 400 + 25) / 3))
    assert s["mape"] == pytest.approx(10.0)  # over actual > 0 only
    assert s["mae_count"] == pytest.approx(3.5 / 3)
    assert s["n"] == 3


def test_backtests_forecasts_and_intervals(features, warehouse):
    db, _ = warehouse
    run = annual.run_annual(features, "test-run", models=FAST_MODELS)
    m = run.metrics.loc[run.metrics["horizon"].isna()]
    assert set(m["dataset"]) == {
        "france_reg_h1",
        "france_reg_h1_3",
        "france_dep_h1",
        "france_dep_h1_3",
    }
    assert set(m["model"]) == set(FAST_MODELS)
    reg = m.loc[m["dataset"] == "france_reg_h1"].set_index("model")
    assert reg.loc["last_value", "n"] == 18 * 18  # every region × indicator, 2024 only
    h13 = run.predictions.loc[run.predictions["dataset"] == "france_reg_h1_3"]
    assert sorted(h13["year"].unique()) == [2022, 2023, 2024]
    assert h13["origin_year"].eq(2021).all()
    # last_value predicts the origin's rate
    lv = h13.loc[h13["model"] == "last_value"]
    origin = features.loc[features["year"] == 2022].set_index("series_id")["lag_1"]
    np.testing.assert_allclose(lv["prediction"], origin.loc[lv["series_id"]].to_numpy())
    fc = run.forecasts
    assert sorted(fc["year"].unique()) == list(range(2025, 2031))
    assert fc["as_of_year"].eq(2024).all()
    assert len(fc) == (18 * 18 + 43 * 17) * 6
    ordered = fc[["forecast_lo_95", "forecast_lo_80", "forecast", "forecast_hi_80",
                  "forecast_hi_95"]].to_numpy()  # fmt: skip
    assert (np.diff(ordered, axis=1) >= -1e-9).all()
    width = fc.assign(w=fc["forecast_hi_80"] - fc["forecast_lo_80"]).groupby("horizon")["w"]
    assert width.mean().is_monotonic_increasing  # intervals widen with the horizon
    assert (fc["forecast_lo_95"] >= 0).all()
    # per series, the band's log-scale offsets from the point never shrink with the horizon
    # (lower bounds floored at 0 excepted); the sample's 2030 95 % high was 244× the last
    # value (a drug-fine series that starts at 0) before the calibration rules
    fc = fc.sort_values(["geo_level", "geo_code", "indicator", "horizon"])
    series = fc.groupby(["geo_level", "geo_code", "indicator"])
    for level in ("80", "95"):
        up = np.log1p(fc[f"forecast_hi_{level}"]) - np.log1p(fc["forecast"])
        down = np.log1p(fc["forecast"]) - np.log1p(fc[f"forecast_lo_{level}"])
        assert (up.groupby([fc[c] for c in series.keys]).diff().dropna() >= -1e-9).all()
        floored = fc[f"forecast_lo_{level}"] == 0
        steps = down.where(~floored).groupby([fc[c] for c in series.keys]).diff().dropna()
        assert (steps >= -1e-9).all()
    last = features.loc[features["is_forecast_row"].astype(bool)].set_index(
        ["geo_level", "geo_code", "indicator"]
    )["lag_1"]
    y2030 = fc.loc[fc["year"] == 2030].set_index(["geo_level", "geo_code", "indicator"])
    ratio = (y2030["forecast_hi_95"] + 1) / (last.loc[y2030.index] + 1)
    assert ratio.max() < 10
    con = duckdb.connect(str(db))
    counts = annual.write_tables(DuckDBTables(con), run)
    cols = [r[0] for r in con.execute("describe ml.france_forecasts").fetchall()]
    con.close()
    assert cols == annual.FORECAST_COLUMNS + annual.VINTAGE_COLUMNS
    assert counts["france_forecasts"] == len(fc)


FRANCE_SERVING = (
    "serving__france_forecasts serving__france_forecasts_latest "
    "serving__france_backtest_metrics serving__france_backtest_metrics_latest"
)


def test_two_runs_append_two_vintages_and_readers_see_the_latest(
    features, warehouse, tmp_path, monkeypatch
):
    """Two France runs on the sample: ml.france_* keep both (run_id, created_at), the serving
    ``*_latest`` models hold the latest only, the published copy keeps
    CRIMECAST_PUBLISH_KEEP_RUNS runs."""
    db, _ = warehouse
    live = tmp_path / "crimecast.duckdb"  # the catalog name of the project's manifest
    shutil.copy(db, live)
    con = duckdb.connect(str(live))
    con.execute("drop schema if exists ml cascade")  # what another test of the module wrote
    con.close()
    con = duckdb.connect(str(live))
    runs = [
        annual.run_annual(
            features,
            f"france-2026010{i}T000000-abcdef",
            models=["last_value"],
            started_at=datetime(2026, 1, i),
        )  # fmt: skip
        for i in (1, 2)
    ]
    for run in runs:
        annual.write_tables(DuckDBTables(con), run)
    vintages = con.execute(
        "select run_id, created_at, count(*) from ml.france_forecasts group by all order by 1"
    ).fetchall()
    n = len(runs[0].forecasts)
    assert vintages == [(r.run_id, r.created_at, n) for r in runs]
    for name in ("france_backtest_predictions", "france_backtest_metrics"):
        got = con.execute(f"select count(distinct run_id), count(*) from ml.{name}").fetchone()
        assert got[0] == 2 and got[1] % 2 == 0
    con.close()
    proc = run_dbt(live, "build", "--quiet", "--select", FRANCE_SERVING, target=tmp_path / "t")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    con = duckdb.connect(str(live), read_only=True)
    for name in ("france_forecasts", "france_backtest_metrics"):
        every = con.execute(f"select count(distinct run_id) from serving.{name}").fetchone()
        latest = con.execute(
            f"select distinct run_id, count(*) over () from serving.{name}_latest"
        ).fetchall()
        assert every == (2,)
        assert [r[0] for r in latest] == [runs[1].run_id]
    assert latest[0][1] == len(runs[1].metrics)
    con.close()
    for keep, expected in (("1", [runs[1].run_id]), ("5", [r.run_id for r in runs])):
        monkeypatch.setenv("CRIMECAST_PUBLISH_KEEP_RUNS", keep)
        copy = publish_copy(live, tmp_path / f"pub{keep}" / "crimecast.duckdb")
        pub = duckdb.connect(str(copy), read_only=True)
        for name in ("france_forecasts", "france_backtest_predictions", "france_backtest_metrics"):
            got = pub.execute(f"select distinct run_id from ml.{name} order by 1").fetchall()
            assert [r[0] for r in got] == expected, (keep, name)
        latest = pub.execute("select distinct run_id from serving.france_forecasts_latest")
        assert latest.fetchall() == [(runs[1].run_id,)]
        pub.close()
