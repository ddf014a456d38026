"""ml/tables.py: the one writer of the ml.* tables (daily and annual paths) and its reads.

Appends keep every run (vintages), add the columns a newer writer brings to an older table,
leave NULL where an older writer lacks one, and roll every table back when one fails; the
France writer (ml/annual.py) appends through it too, onto tables an older version replaced.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd
import pytest

from ml import annual
from ml.tables import DuckDBTables, Tables, read_sql


def _con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(":memory:")


def _forecasts(run_id: str, **extra) -> pd.DataFrame:
    """Rows shaped like the daily ml.forecasts (a few of its columns)."""
    return pd.DataFrame(
        {
            "run_id": [run_id, run_id],
            "as_of_date": pd.to_datetime(["2024-06-01", "2024-06-01"]).date,
            "series_id": ["boston|A|x", "boston|A|y"],
            "forecast": [1.0, 2.0],
            **extra,
        }
    )


def test_duckdb_tables_is_a_tables():
    assert isinstance(DuckDBTables(_con()), Tables)


def test_append_keeps_every_run_and_evolves_columns():
    con = _con()
    tables = DuckDBTables(con)
    assert tables.append({"forecasts": _forecasts("r1")}) == {"forecasts": 2}
    # a newer writer adds a column; an older one (without it) still appends
    tables.append({"forecasts": _forecasts("r2", forecast_mean=[1.5, 2.5])})
    tables.append({"forecasts": _forecasts("r3")})
    got = tables.read(
        "select run_id, count(*) as n, count(forecast_mean) as with_mean "
        "from ml.forecasts group by run_id order by run_id"
    )
    assert got.to_dict("records") == [
        {"run_id": "r1", "n": 2, "with_mean": 0},
        {"run_id": "r2", "n": 2, "with_mean": 2},
        {"run_id": "r3", "n": 2, "with_mean": 0},
    ]
    cols = con.execute("select column_name, column_type from (describe ml.forecasts)").fetchall()
    assert dict(cols)["forecast_mean"] == "DOUBLE"


def test_append_is_one_transaction():
    con = _con()
    tables = DuckDBTables(con)
    tables.append({"forecasts": _forecasts("r1")})
    # an older table whose column cannot hold what the frame brings: the whole append fails
    con.execute("create table ml.champions (run_id varchar, chosen_on date)")
    bad = pd.DataFrame({"run_id": ["r2"], "chosen_on": [3.5]})
    with pytest.raises(duckdb.Error):
        tables.append(
            {"forecasts": _forecasts("r2"), "new_table": _forecasts("r2"), "champions": bad}
        )
    assert tables.read("select distinct run_id from ml.forecasts").to_dict("list") == {
        "run_id": ["r1"]
    }
    created = con.execute(
        "select count(*) from information_schema.tables where table_name = 'new_table'"
    ).fetchone()
    assert created == (0,)  # the DDL rolled back too
    assert tables.read("select count(*) as n from ml.champions")["n"].tolist() == [0]
    # the connection is usable afterwards
    tables.append({"forecasts": _forecasts("r3")})
    assert len(tables.read("ml.forecasts")) == 4


def test_read_a_table_or_a_query_with_parameters():
    con = _con()
    tables = DuckDBTables(con)
    tables.append({"forecasts": _forecasts("r1")}, schema="marts")
    assert len(tables.read("marts.forecasts")) == 2
    one = tables.read("select * from marts.forecasts where series_id = ?", ["boston|A|y"])
    assert one["forecast"].tolist() == [2.0]


@pytest.mark.parametrize(
    ("given", "runs"),
    [
        ("ml.forecasts", "select * from ml.forecasts"),
        ("  forecasts\n", "select * from forecasts"),
        ("select 1 as x", "select 1 as x"),
        ("ml.forecasts where 1=1", "ml.forecasts where 1=1"),
    ],
)
def test_a_bare_table_name_reads_the_whole_table_anything_else_is_a_query(given, runs):
    # one rule for every engine's read (DuckDBTables and SparkTables both call read_sql)
    assert read_sql(given) == runs


@pytest.mark.parametrize("name", ["forecasts; drop table x", "ml.forecasts", "1st"])
def test_names_that_are_not_plain_identifiers_are_refused(name):
    with pytest.raises(ValueError, match="not a plain table or schema name"):
        DuckDBTables(_con()).append({name: _forecasts("r1")})


def _annual_run(run_id: str, created_at: datetime) -> annual.AnnualRun:
    """A France run with one row per table (every written column)."""

    def frame(columns: list[str]) -> pd.DataFrame:
        values = {"run_id": run_id, "horizon": 1.0, "as_of_year": 2024, "year": 2025}
        return pd.DataFrame({c: [values.get(c, "x" if c != "forecast" else 1.0)] for c in columns})

    return annual.AnnualRun(
        run_id,
        predictions=frame(annual.PREDICTION_COLUMNS),
        metrics=frame(annual.METRIC_COLUMNS),
        forecasts=frame(annual.FORECAST_COLUMNS),
        selected={},
        created_at=created_at,
    )


def test_france_runs_are_appended_onto_a_table_an_older_version_replaced():
    con = _con()
    tables = DuckDBTables(con)
    # what the replacing writer left: the columns of before, no created_at
    con.execute("create schema ml")
    old = _annual_run("france-20250101T000000-aaaaaa", datetime(2025, 1, 1))
    con.register("old", old.forecasts)
    con.execute("create table ml.france_forecasts as select * from old")
    counts = annual.write_tables(
        tables, _annual_run("france-20260101T000000-bbbbbb", datetime(2026, 1, 1))
    )
    assert counts == {
        "france_forecasts": 1,
        "france_backtest_predictions": 1,
        "france_backtest_metrics": 1,
    }
    annual.write_tables(tables, _annual_run("france-20260201T000000-cccccc", datetime(2026, 2, 1)))
    got = tables.read("select run_id, created_at from ml.france_forecasts order by run_id")
    assert got["run_id"].str[7:15].tolist() == ["20250101", "20260101", "20260201"]
    assert got["created_at"].isna().tolist() == [True, False, False]
    for name in ("france_backtest_predictions", "france_backtest_metrics"):
        runs = tables.read(f"select count(distinct run_id) as n from ml.{name}")["n"]
        assert runs.tolist() == [2]


def test_a_france_write_that_fails_leaves_no_table_changed():
    con = _con()
    tables = DuckDBTables(con)
    annual.write_tables(tables, _annual_run("france-1", datetime(2026, 1, 1)))
    # the metrics table of another version holds `mae` as a date: its append fails, last
    con.execute("drop table ml.france_backtest_metrics")
    con.execute("create table ml.france_backtest_metrics (run_id varchar, mae date)")
    run = _annual_run("france-2", datetime(2026, 2, 1))
    run.metrics["mae"] = 0.5
    with pytest.raises(duckdb.Error):
        annual.write_tables(tables, run)
    for name in ("france_forecasts", "france_backtest_predictions"):
        runs = tables.read(f"select distinct run_id from ml.{name}")["run_id"].tolist()
        assert runs == ["france-1"]
