"""Hostile inputs and settings for the forecasting step (issue 17, item 4; the CLI part of
item 6): a source with a few weeks of history beside a normal one, cutoffs that do not fit the
data, per-source cutoffs, a huge horizon and other bad run settings. Each input is generated
here and loaded through the real loader and dbt; each case asserts the message AND the state
of the warehouse (and the published copy where it matters)."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
from conftest import run_dbt
from serving_dbt import build_serving

from ingest.loader import load_source
from ingest.mapping import load_mapping
from ml.backtest import BacktestPlan, profile_plan
from ml.features import build_features
from ml.history import MAX_HORIZON, InsufficientHistory, assess, needs
from ml.pipeline import RunConfig, run_source
from orchestration.cli import failure_line, main, validate_run_settings
from orchestration.config import SettingsError, ml_settings, split_cutoffs
from orchestration.definitions import build_resources
from orchestration.defs.incidents.ml import ML_TABLES, ml_forecasts, ml_run_config
from orchestration.defs.incidents.raw import raw_incidents
from orchestration.defs.serving.publish import published_warehouse
from samples.incidents import BOSTON_CURRENT_COLUMNS, HOUSTON_COLUMNS
from serving.summary import print_summary

REPO = Path(__file__).resolve().parents[1]
START = date(2023, 1, 1)
SHORT_DAYS = 21  # "a few weeks" of a third city: far below the minimum
LONG_DAYS = 300
HOUSTON_START = date(2023, 3, 1)  # Houston starts later: a cutoff can fit Boston only
ML_ENV = (
    "CRIMECAST_CUTOFF",
    "CRIMECAST_HORIZON",
    "CRIMECAST_ML_PROFILE",
    "CRIMECAST_ML_TRAIN_DAYS",
)

# ---------------------------------------------------------------------------------------------
# generated inputs in each source's real schema: two areas, one category, Poisson daily counts


def _counts(days: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).poisson(3.0, size=(days, 2))


def boston_csv(path: Path, days: int, start: date = START) -> Path:
    rows, n = [], 0
    for i, per_area in enumerate(_counts(days, 1)):
        d = start + timedelta(days=i)
        for district, k in zip(("B2", "D4"), per_area, strict=True):
            for j in range(int(k)):
                n += 1
                hour = 8 + j % 12
                rows.append(
                    [f"I{n:07d}", "619", "", "LARCENY ALL OTHERS", district, "282", "0",
                     f"{d} {hour:02d}:00:00+00", str(d.year), str(d.month), d.strftime("%A"),
                     str(hour), "", "WASHINGTON ST", "42.33", "-71.08", "(42.33, -71.08)"]
                )  # fmt: skip
    return _write(path, BOSTON_CURRENT_COLUMNS, rows)


def houston_csv(path: Path, days: int, start: date = HOUSTON_START) -> Path:
    rows = []
    for i, per_area in enumerate(_counts(days, 2)):
        d = start + timedelta(days=i)
        for beat, k in zip(("10H50", "12D10"), per_area, strict=True):
            for j in range(int(k)):
                hour = 8 + j % 10
                rows.append(
                    [f"{d} {hour + 5:02d}:00:00", f"{d.month}/{d.day}/{d.year}", str(hour), "20A",
                     "theft", beat, "1200-1299", "main", "st", "-", "1", d.strftime("%B").lower(),
                     d.strftime("%A").lower(), "apartment", "1250 main st", "-95.37", "29.76"]
                )  # fmt: skip
    return _write(path, HOUSTON_COLUMNS, rows)


def _write(path: Path, header, rows) -> Path:
    def cell(v: str) -> str:
        return f'"{v}"' if "," in v else v

    path.write_text("".join(",".join(map(cell, r)) + "\n" for r in [list(header), *rows]))
    return path


def shortville_mapping(folder: Path) -> Path:
    """A third city in Houston's schema (its mapping with another name; the offence text is
    the category): the source with a few weeks of data."""
    text = (REPO / "sources" / "houston.yml").read_text()
    text = text.replace("name: houston", "name: shortville").replace("category_map: [category]", "")
    path = folder / "shortville.yml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """One warehouse, loaded by the real loader and built by dbt (the incident models, as the
    pipeline builds them) from generated files: Boston and Houston with most of a year
    (Houston starting two months later), and 'shortville' with three weeks."""
    folder = tmp_path_factory.mktemp("hostile_ml")
    warehouse = folder / "crimecast.duckdb"
    inputs = {
        "boston": str(boston_csv(folder / "boston.csv", LONG_DAYS)),
        "houston": str(houston_csv(folder / "houston.csv", LONG_DAYS - 59)),
    }
    for city in ("boston", "houston"):  # one partition per city
        res = dg.materialize(
            [raw_incidents],
            resources=build_resources(warehouse),
            partition_key=city,
            run_config={"ops": {"raw_incidents": {"config": {"inputs": inputs}}}},
        )
        assert res.success
    short = houston_csv(folder / "shortville.csv", SHORT_DAYS, start=START)
    con = duckdb.connect(str(warehouse))
    try:
        load_source(con, load_mapping(shortville_mapping(folder)), str(short))
    finally:
        con.close()
    # dbt in this process on the session's parsed manifest (tests/conftest.py)
    proc = run_dbt(
        warehouse, "build", "--select", "+daily_features", "+incidents_data_quality",
        "--exclude-resource-type", "unit_test", target=folder / "target",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    return warehouse


@pytest.fixture
def warehouse_of(built, tmp_path, monkeypatch):
    """A private copy of a built warehouse (tests never share state), with the environment
    pointing at it (the published copy beside it)."""
    for name in (*ML_ENV, "CRIMECAST_SOURCES"):
        monkeypatch.delenv(name, raising=False)

    def copy() -> Path:
        target = tmp_path / "w" / "crimecast.duckdb"
        target.parent.mkdir(parents=True)
        shutil.copy(built, target)
        monkeypatch.setenv("CRIMECAST_WAREHOUSE", str(target))
        monkeypatch.delenv("CRIMECAST_PUBLISHED", raising=False)
        return target

    return copy


def _run_ml(warehouse: Path, config: dict | None = None, publish: bool = False):
    """The ML step (its result is returned); with ``publish``, then the dbt serving models and
    the published copy, as the pipeline orders them."""
    run_config = {"ops": {"ml_forecasts": {"config": config}}} if config is not None else None
    result = dg.materialize(
        [ml_forecasts],
        resources=build_resources(warehouse),
        run_config=run_config,
        raise_on_error=False,
    )
    if publish and result.success:
        build_serving(warehouse)
        copy = dg.materialize([published_warehouse], resources=build_resources(warehouse))
        assert copy.success
    return result


def _q(path: Path, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _tables(path: Path) -> set[str]:
    return {
        f"{s}.{t}"
        for s, t in _q(path, "select table_schema, table_name from information_schema.tables")
    }


def _status(path: Path) -> dict[str, dict]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        cur = con.execute(
            "select * from ml.source_status where run_id = (select max(run_id) "
            "from ml.source_status)"
        )
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()
    return {r["source"]: r for r in rows}


def _metadata(result, name: str) -> dict:
    mats = result.asset_materializations_for_node("ml_forecasts")
    meta = next(m for m in mats if m.asset_key == dg.AssetKey(["ml", name])).metadata
    return {k: v.value for k, v in meta.items()}


def _default_cutoff(last: date) -> date:
    return last - timedelta(days=needs(profile_plan("lean")).default_test - 1)


# ---------------------------------------------------------------------------------------------
# short history beside a normal source


def test_short_history_is_skipped_with_its_reason_and_a_global_cutoff_applies_where_it_fits(
    warehouse_of, capsys
):
    """Three weeks of one city beside two normal ones, with the README's example of a global
    cutoff (`CRIMECAST_CUTOFF=<date>` chosen for Boston) that does not fit Houston's data."""
    warehouse = warehouse_of()
    cutoff = date(2023, 7, 1)  # Boston has 181 days before it, Houston 122
    first, last, n = _q(
        warehouse,
        "select min(date), max(date), count(distinct date) from marts.daily_features "
        "where source = 'shortville'",
    )[0]
    assert n < 30  # the cleaned input covers a few weeks
    need = needs(profile_plan("lean").covering(28)).total

    result = _run_ml(warehouse, {"cutoff": str(cutoff)}, publish=True)

    assert result.success  # no "no training rows" traceback: the run goes on
    status = _status(warehouse)
    assert status["houston"]["status"] == status["boston"]["status"] == "forecast"
    # the global cutoff where it fits, the default elsewhere, and the status says why
    assert status["boston"]["test_cutoff"] == cutoff and status["boston"]["cutoff_note"] is None
    houston_last = _q(warehouse, "select max(date) from marts.daily_features "
                      "where source = 'houston'")[0][0]  # fmt: skip
    assert status["houston"]["test_cutoff"] == _default_cutoff(houston_last)
    note = status["houston"]["cutoff_note"]
    assert note == (
        f"global cutoff {cutoff} not used: it leaves 122 days of history before it (data from "
        f"{HOUSTON_START}); the backtest needs at least 167 (28-day features, 4 validation "
        "cutoffs × 28 days, horizon 28); default cutoff"
    )
    cuts = dict(
        _q(warehouse, "select source, min(cutoff) from ml.backtest_metrics where split = 'test' "
           "group by 1")
    )  # fmt: skip
    assert cuts == {"boston": cutoff, "houston": _default_cutoff(houston_last)}
    assert status["shortville"]["status"] == "skipped"
    reason = status["shortville"]["skipped_reason"]
    assert reason == (
        f"shortville: {n} days of history after cleaning ({first} → {last}); forecasting needs "
        f"at least {need} (28-day features, 4 validation cutoffs × 28 days, horizon 28, 56-day "
        "test window) — skipped"
    )
    assert "\n" not in reason
    row = status["shortville"]
    assert (row["history_days"], row["min_history_days"], row["test_cutoff"]) == (n, need, None)
    # the warehouse holds this run's rows of the other two sources only, in every table
    run_id = row["run_id"]
    for name in ML_TABLES:
        if name == "source_status":
            continue
        sources = {r[0] for r in _q(warehouse, f"select distinct source from ml.{name}")}
        assert "shortville" not in sources, f"ml.{name} has rows of shortville"
    for name in ("forecasts", "backtest_metrics", "leaderboard", "model_runs"):
        got = _q(warehouse, f"select distinct source from ml.{name} where run_id = ?", [run_id])
        assert sorted(r[0] for r in got) == ["boston", "houston"], name
    # the Dagster metadata says it, numerically and in words
    meta = _metadata(result, "source_status")
    assert meta["shortville_status"] == "skipped" and meta["houston_status"] == "forecast"
    assert meta["shortville_history_days"] == n and meta["shortville_min_history_days"] == need
    assert meta["shortville_reason"] == reason and meta["houston_reason"] == note
    assert meta["sources_forecast"] == 2 and meta["sources_skipped"] == 1
    # the run was published: the cleaning counts of the short source reach the copy
    published = warehouse.parent / "published" / "crimecast.duckdb"
    kept = _q(
        published, "select sum(rows_kept) from serving.data_quality where source = 'shortville'"
    )[0][0]
    assert kept and kept > 0
    # and `crimecast summary` says why shortville has no forecast
    capsys.readouterr()
    print_summary(warehouse)
    out = capsys.readouterr().out
    assert "shortville — not forecast in the latest ML run" in out
    assert reason in out
    assert "houston — out of sample" in out and "boston — out of sample" in out
    assert f"note: {note}" in out


def test_run_source_refuses_a_short_history_before_fitting():
    days = 40
    parts = []
    for area in ("A", "B"):
        ds = pd.date_range("2024-01-01", periods=days)
        y = np.random.default_rng(0).poisson(2.0, days).astype(float)
        parts.append(pd.DataFrame({"series_id": f"town|{area}|x", "ds": ds, "y": y}))
    frame = build_features(pd.concat(parts, ignore_index=True))
    config = RunConfig(run_id="r", test_cutoff=date(2024, 1, 20))
    with pytest.raises(InsufficientHistory, match=r"^town: cutoff 2024-01-20 leaves 19 days"):
        run_source("town", frame, [], config, log=lambda _m: None)


def test_minimum_history_boundary():
    plan = BacktestPlan()
    need = needs(plan)
    assert (need.before_cutoff, need.default_test, need.total) == (167, 56, 223)
    last = date(2024, 12, 31)
    enough = assess("x", last - timedelta(days=need.total - 1), last, plan)
    short = assess("x", last - timedelta(days=need.total - 2), last, plan)
    assert enough.forecast and enough.test_cutoff == last - timedelta(days=55)
    assert not short.forecast and "222 days of history" in short.skipped_reason
    empty = assess("x", None, None, plan)  # a loaded source whose every row was cleaned away
    assert empty.skipped_reason == "x: no daily counts after cleaning — skipped"
    # a longer horizon is backtested too, so it needs more history and a longer test window
    long = needs(plan.covering(MAX_HORIZON))
    assert (long.before_cutoff, long.default_test) == (28 + 365 + 4 * 28, MAX_HORIZON)


# ---------------------------------------------------------------------------------------------
# cutoffs that do not fit the data


def test_cutoff_after_the_end_skips_that_source_with_its_reason(warehouse_of):
    warehouse = warehouse_of()
    last = dict(_q(warehouse, "select source, max(date) from marts.daily_features group by 1"))
    result = _run_ml(warehouse, {"cutoffs": {"houston": "2099-01-01", "boston": "2099-01-01"}})

    assert result.success
    status = _status(warehouse)
    for source in ("boston", "houston"):
        assert status[source]["skipped_reason"] == (
            f"{source}: cutoff 2099-01-01 is after the last day of its data ({last[source]}) "
            "— skipped"
        )
        assert status[source]["cutoff_setting"] == "2099-01-01"
    assert status["shortville"]["status"] == "skipped"
    # nothing was fitted or written but the status rows
    assert {t for t in _tables(warehouse) if t.startswith("ml.")} == {"ml.source_status"}
    check = next(iter(result.get_asset_check_evaluations()))
    assert check.passed and "no source was forecast" in check.description


def test_a_cutoff_before_enough_history_skips_that_source(warehouse_of):
    warehouse = warehouse_of()
    early = HOUSTON_START + timedelta(30)
    result = _run_ml(warehouse, {"cutoffs": {"houston": str(early), "boston": str(early)}})
    assert result.success
    status = _status(warehouse)
    assert status["houston"]["skipped_reason"] == (
        f"houston: cutoff {early} leaves 30 days of history before it (data from "
        f"{HOUSTON_START}); the backtest needs at least 167 (28-day features, 4 validation "
        "cutoffs × 28 days, horizon 28) — skipped"
    )
    assert status["boston"]["skipped_reason"].startswith(f"boston: cutoff {early} leaves 89 days")
    assert {t for t in _tables(warehouse) if t.startswith("ml.")} == {"ml.source_status"}


# ---------------------------------------------------------------------------------------------
# per-source cutoffs


def test_cutoff_strings_are_parsed():
    assert split_cutoffs("2018-06-01") == ("2018-06-01", {})
    assert split_cutoffs(" boston=2018-06-01, houston = 2010-07-06 ") == (
        "",
        {"boston": "2018-06-01", "houston": "2010-07-06"},
    )
    s = ml_settings({"CRIMECAST_CUTOFF": "2018-06-01,houston=2010-07-06"})
    assert s.cutoff == date(2018, 6, 1) and s.cutoffs == {"houston": date(2010, 7, 6)}
    s = ml_settings({"CRIMECAST_CUTOFF": "boston=2018-06-01", "CRIMECAST_HORIZON": "7"})
    assert s.cutoff is None and s.cutoffs == {"boston": date(2018, 6, 1)} and s.horizon == 7
    with pytest.raises(SettingsError, match=r"^CRIMECAST_CUTOFF=boston=2018-06-31: '2018-06-31'"):
        ml_settings({"CRIMECAST_CUTOFF": "boston=2018-06-31"})


def test_a_cutoff_for_boston_only_on_a_warehouse_with_houston(warehouse_of, monkeypatch):
    warehouse = warehouse_of()
    cutoff = date(2023, 7, 1)
    monkeypatch.setenv("CRIMECAST_CUTOFF", f"boston={cutoff}")
    # what `crimecast run` does: validate the environment, pass it as the run config
    result = _run_ml(warehouse, ml_run_config(validate_run_settings())["ml_forecasts"]["config"])

    assert result.success
    status = _status(warehouse)
    last = dict(_q(warehouse, "select source, max(date) from marts.daily_features group by 1"))
    assert status["boston"]["test_cutoff"] == cutoff
    assert status["houston"]["test_cutoff"] == _default_cutoff(last["houston"])
    assert status["houston"]["cutoff_setting"] is None
    cuts = dict(
        _q(warehouse, "select source, min(cutoff) from ml.backtest_metrics where split = 'test' "
           "group by 1")
    )  # fmt: skip
    assert cuts == {"boston": cutoff, "houston": _default_cutoff(last["houston"])}


# ---------------------------------------------------------------------------------------------
# bad run settings: one line, exit 2, before Dagster starts; and in the launchpad


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("CRIMECAST_HORIZON", "100000", "CRIMECAST_HORIZON=100000: must be between 1 and 366 days"),
        ("CRIMECAST_HORIZON", "0", "CRIMECAST_HORIZON=0: must be between 1 and 366 days"),
        ("CRIMECAST_HORIZON", "two", "CRIMECAST_HORIZON=two: must be a whole number of days "
         "between 1 and 366"),
        ("CRIMECAST_CUTOFF", "2018-13-01", "CRIMECAST_CUTOFF=2018-13-01: '2018-13-01' is not a "
         "date (YYYY-MM-DD)"),
        ("CRIMECAST_CUTOFF", "bostn=2018-06-01", "CRIMECAST_CUTOFF=bostn=2018-06-01: unknown "
         "source 'bostn' (available: boston, houston)"),
        ("CRIMECAST_ML_PROFILE", "huge", "CRIMECAST_ML_PROFILE=huge: choose one of full, lean"),
        ("CRIMECAST_ML_TRAIN_DAYS", "0", "CRIMECAST_ML_TRAIN_DAYS=0: must be a positive whole "
         "number of days"),
        ("CRIMECAST_SOURCES", "nowhere", "CRIMECAST_SOURCES=nowhere: unknown source 'nowhere'"),
    ],
)  # fmt: skip
def test_bad_run_settings_are_one_line_and_exit_2_before_dagster_starts(
    name, value, message, tmp_path, monkeypatch, capsys
):
    for var in (*ML_ENV, "CRIMECAST_SOURCES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CRIMECAST_WAREHOUSE", str(tmp_path / "w" / "crimecast.duckdb"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv(name, value)

    assert main(["run"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"crimecast: {message}")
    assert "Traceback" not in captured.err + captured.out and captured.out == ""
    # nothing started: no Dagster instance, no warehouse
    assert not (tmp_path / "dagster_home").exists() and not (tmp_path / "w").exists()


def test_a_bad_launchpad_config_fails_in_one_line_and_writes_nothing(warehouse_of):
    warehouse = warehouse_of()
    result = _run_ml(warehouse, {"horizon": 100000})
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert failure_line(failure) == (
        "ml_forecasts config: horizon=100000: must be between 1 and 366 days"
    )
    assert not {t for t in _tables(warehouse) if t.startswith("ml.")}
