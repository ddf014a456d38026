"""The checks on ml/forecasts (issue 15): non-negative, inside nested bands, every selected
series forecast for every step; on a small warehouse written here, then broken one way each."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.defs.incidents.checks import FORECASTS, forecast_checks
from orchestration.resources import WarehouseResource

SERIES = ("houston|A|Theft", "houston|B|Theft")
HORIZON = 3


def _warehouse(path: Path) -> Path:
    con = duckdb.connect(str(path))
    con.execute("create schema marts; create schema ml")
    con.execute("create table marts.daily_features (source varchar, series_id varchar, date date)")
    con.executemany(
        "insert into marts.daily_features values ('houston', ?, date '2024-01-01')",
        [[s] for s in SERIES],
    )
    con.execute(
        "create table ml.forecasts (run_id varchar, source varchar, series_id varchar, "
        "date date, horizon bigint, forecast double, forecast_lo_80 double, "
        "forecast_hi_80 double, forecast_lo_95 double, forecast_hi_95 double)"
    )
    for run_id, lo in (("20240101T000000-old", -5.0), ("20240102T000000-new", 1.0)):
        # the old run is broken; only the latest run per source is checked
        con.executemany(
            "insert into ml.forecasts values (?, 'houston', ?, date '2024-01-02' + ?, ?, "
            "2, ?, 3, ?, 4)",
            [[run_id, s, h, h, lo, lo - 1 if lo > 0 else lo] for s in SERIES for h in range(1, 4)],
        )
    con.close()
    return path


def _evaluate(path: Path) -> dict[str, dg.AssetCheckEvaluation]:
    database = "database" if "database" in WarehouseResource.model_fields else "path"
    result = dg.materialize(
        [dg.AssetSpec(FORECASTS), forecast_checks],
        resources={"warehouse": WarehouseResource(**{database: str(path)})},
        selection=dg.AssetSelection.checks_for_assets(FORECASTS),
        raise_on_error=False,
    )
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_a_good_latest_run_passes(tmp_path: Path):
    checks = _evaluate(_warehouse(tmp_path / "w.duckdb"))
    assert {n: e.passed for n, e in checks.items()} == {
        "forecasts_non_negative": True,
        "forecasts_within_bands": True,
        "forecasts_complete": True,
    }


@pytest.mark.parametrize(
    ("sql", "failed", "said"),
    [
        (
            "update ml.forecasts set forecast_lo_95 = -0.5 where run_id like '%new' and "
            "horizon = 2 and series_id = 'houston|A|Theft'",
            {"forecasts_non_negative"},
            "1 row(s) below 0: houston houston|A|Theft 2024-01-04",
        ),
        (
            "update ml.forecasts set forecast = 3.5 where run_id like '%new' and horizon = 1",
            {"forecasts_within_bands"},
            "2 row(s) outside their bands",
        ),
        (
            "delete from ml.forecasts where run_id like '%new' and horizon = 3 "
            "and series_id = 'houston|B|Theft'",
            {"forecasts_complete"},
            "1 series without one forecast per step: houston houston|B|Theft: 2 of 3",
        ),
        (
            "insert into marts.daily_features values ('houston', 'houston|C|Theft', "
            "date '2024-01-01')",
            {"forecasts_complete"},
            "houston houston|C|Theft: 0 of 3",
        ),
    ],
)
def test_each_broken_invariant_fails_its_check(tmp_path: Path, sql, failed, said):
    path = _warehouse(tmp_path / "w.duckdb")
    con = duckdb.connect(str(path))
    con.execute(sql)
    con.close()
    checks = _evaluate(path)
    assert {n for n, e in checks.items() if not e.passed} == failed
    (name,) = failed
    assert said in checks[name].description
    assert checks[name].severity == dg.AssetCheckSeverity.ERROR
