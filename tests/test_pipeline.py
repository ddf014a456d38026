"""The whole graph materialized in-process on a temporary warehouse with the sample data."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
from conftest import copy_warehouse

from ml.features import (
    FEATURE_COLUMNS,
    LAG_COLUMNS,
    ROLL_COLUMNS,
    build_features,
    from_mart,
    holidays_from_seed,
    horizon_features,
)
from orchestration.definitions import build_resources, defs
from orchestration.defs.incidents.raw import raw_incidents


@pytest.fixture(scope="module")
def built(sample_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every asset materialized once on a fresh warehouse with the sample inputs: the session's
    build (tests/conftest.py, ALL_ASSETS, no CRIMECAST_* setting), copied for this module; the
    tests that write take their own copy (``sample_copy``)."""
    return copy_warehouse(sample_warehouse, tmp_path_factory.mktemp("pipeline") / "w")


def _query(warehouse: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _fingerprint(warehouse: Path, tables: list[str]) -> dict[str, str]:
    """Content hash of each table, independent of row order."""
    out = {}
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        for table in tables:
            rows = sorted(map(repr, con.execute(f"select * from {table}").fetchall()))
            out[table] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    finally:
        con.close()
    return out


def test_graph_has_every_layer_and_dbt_tests_as_checks():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    for expected in (
        "raw/incidents",
        "staging/stg_police__incidents",
        "marts/daily_counts",
        "marts/daily_features",
        "ml/forecasts",
        "ml/backtest_metrics",
    ):
        assert expected in keys, f"{expected} missing from the asset graph: {sorted(keys)}"
    check_targets = {k.asset_key.to_user_string() for k in graph.asset_check_keys}
    assert "marts/daily_counts" in check_targets
    assert "raw/incidents" in check_targets  # source tests become checks on the raw asset


def test_marts_are_gap_free_and_cover_every_source(built: Path):
    rows = _query(
        built,
        "select source, count(distinct series_id), count(*), min(date), max(date) "
        "from marts.daily_counts group by source order by source",
    )
    sources = {r[0] for r in rows}
    assert {"boston", "houston"} <= sources
    for source, n_series, n_rows, first, last in rows:
        days = (last - first).days + 1
        assert n_rows == n_series * days, f"{source}: a series has a missing day"


def test_forecasts_cover_every_series_for_the_horizon(built: Path):
    rows = _query(
        built,
        "select f.source, count(distinct f.series_id), min(f.horizon), max(f.horizon), "
        "bool_and(coalesce(isfinite(f.forecast) and isfinite(f.forecast_mean), false)), "
        "bool_and(coalesce(f.forecast_lo_95 <= f.forecast_lo_80 and f.forecast_lo_80 <= f.forecast"
        " and f.forecast <= f.forecast_hi_80 and f.forecast_hi_80 <= f.forecast_hi_95, false)), "
        "bool_and(f.date = f.as_of_date + f.horizon::int) "
        "from ml.forecasts f group by f.source",
    )
    series = dict(
        _query(built, "select source, count(distinct series_id) from marts.daily_counts group by 1")
    )
    assert {r[0] for r in rows} == set(series)
    for source, n_series, hmin, hmax, finite, nested, dates_ok in rows:
        assert n_series == series[source]
        assert (hmin, hmax) == (1, 28)
        assert finite, f"{source}: a forecast is NaN or infinite"
        assert nested, f"{source}: point forecast outside its 80 % band, or 80 % not inside 95 %"
        assert dates_ok
    # the expected counts are on the scale of the recent history (mean of the last 56 observed
    # days): per series, the mean over the 28 forecast days is within (recent mean + 1) of it,
    # and per source and horizon, the forecast total is within a factor 2 of the recent total
    recent = (
        "with last as (select source, max(date) as d from marts.daily_counts group by 1), "
        "recent as (select c.source, c.series_id, avg(c.incident_count) as m "
        "  from marts.daily_counts c join last using (source) where c.date > last.d - 56 "
        "  group by 1, 2) "
    )
    per_series = _query(
        built,
        recent + "select r.source, count(*), max(abs(f.fm - r.m) / (r.m + 1)) from recent r "
        "join (select series_id, avg(forecast_mean) as fm from ml.forecasts group by 1) f "
        "using (series_id) group by 1",
    )
    assert {r[0] for r in per_series} == set(series)
    for source, n_series, worst in per_series:
        assert n_series == series[source]
        assert worst < 1, f"{source}: a series' forecast is far from its recent level"
    per_horizon = _query(
        built,
        recent + "select r.source, f.horizon, count(*), sum(f.forecast_mean) / sum(r.m) "
        "from recent r join ml.forecasts f using (series_id) group by 1, 2 order by 1, 2",
    )
    assert len(per_horizon) == 28 * len(series)
    for source, horizon, n_series, ratio in per_horizon:
        assert n_series == series[source]
        assert 0.5 < ratio < 2, f"{source}, horizon {horizon}: {ratio:.2f}× the recent total"


def test_backtest_is_out_of_sample_and_scored_beside_baselines(built: Path):
    metrics = _query(
        built,
        "select source, model, mae, n, noise_floor_mae, cutoff from ml.backtest_metrics",
    )
    by_source: dict[str, dict[str, float]] = {}
    for source, model, mae, n, floor, _cutoff in metrics:
        assert n > 0 and mae >= 0 and floor > 0
        by_source.setdefault(source, {})[model] = mae
    for models in by_source.values():
        assert {"seasonal_naive_7", "mean_7", "mean_28", "xgboost"} <= set(models)
    # every backtest prediction is on or after its cutoff, and its actual is the mart's count
    bad = _query(
        built,
        "select count(*) from ml.backtest_predictions p join marts.daily_counts c "
        "on p.series_id = c.series_id and p.date = c.date "
        "where p.date < p.cutoff or p.actual <> c.incident_count",
    )[0][0]
    assert bad == 0
    runs = _query(built, "select count(*), count(artifact_path) from ml.model_runs")[0]
    assert runs[0] > 0 and runs[0] == runs[1]


def test_python_feature_builder_matches_the_dbt_mart(built: Path):
    """The features are declared once (the vars daily_feature_lags / daily_feature_windows of
    dbt_project.yml): the mart has exactly the feature columns ml/features.py names, the Python
    builder gives the mart's values for every one, and the direct h-step features the backtest
    builds from the mart equal those built from the Python features (what the operational
    forecast extends) at every horizon."""
    con = duckdb.connect(str(built), read_only=True)
    try:
        mart = con.execute(
            "select * from marts.daily_features where source = 'boston' order by series_id, date"
        ).df()
        seed = con.execute("select country, date from seeds.holidays").df()
    finally:
        con.close()
    keys = ["source", "series_id", "area", "category", "date", "incident_count", "is_filled"]
    assert [c for c in mart.columns if c not in keys] == FEATURE_COLUMNS
    long = mart[["series_id", "date", "incident_count"]].rename(
        columns={"date": "ds", "incident_count": "y"}
    )
    ours = build_features(long, holidays_from_seed(seed, "US"))
    mart = mart.sort_values(["series_id", "date"]).reset_index(drop=True)
    for col in FEATURE_COLUMNS:
        if col in ("area_code", "category_code"):
            assert (ours[col] == mart[col]).all(), col
            continue
        pd.testing.assert_series_equal(
            ours[col].astype(float), mart[col].astype(float), check_names=False, rtol=1e-9
        )
    from_dbt = from_mart(mart)
    for h in (1, 7, 28):
        a = horizon_features(from_dbt, h)
        b = horizon_features(ours.assign(source="boston"), h)
        for col in LAG_COLUMNS + ROLL_COLUMNS:
            pd.testing.assert_series_equal(
                a[col].astype(float), b[col].astype(float), check_names=False, rtol=1e-9
            )


def test_reloading_the_same_files_adds_nothing(sample_copy: Path, monkeypatch: pytest.MonkeyPatch):
    built = sample_copy
    monkeypatch.setenv("CRIMECAST_WAREHOUSE", str(built))
    before = _fingerprint(built, ["raw.incidents"])
    for city in ("boston", "houston"):
        result = dg.materialize(
            [raw_incidents], resources=build_resources(built), partition_key=city
        )
        assert result.success
    assert _fingerprint(built, ["raw.incidents"]) == before


def test_bad_input_fails_clearly_and_leaves_the_warehouse_unchanged(
    sample_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    built = sample_copy
    bad = tmp_path / "boston_bad.csv"
    bad.write_text("INCIDENT_NUMBER;OFFENSE_CODE;DISTRICT\nI1;619;B2\n")  # wrong delimiter
    monkeypatch.setenv("CRIMECAST_WAREHOUSE", str(built))
    monkeypatch.setenv("CRIMECAST_INPUT_BOSTON", str(bad))
    tables = ["raw.incidents", "raw.source_files", "marts.daily_counts"]
    before = _fingerprint(built, tables)
    result = dg.materialize(
        [raw_incidents],
        resources=build_resources(built),
        raise_on_error=False,
        partition_key="boston",
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert "boston_bad.csv" in message
    assert _fingerprint(built, tables) == before
