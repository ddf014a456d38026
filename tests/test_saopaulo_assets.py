"""Dagster assets of São Paulo: raw load (sample, error rule) and the ML multi-asset's tables.

The dbt marts are built by dbt in the full pipeline; here the mart is stood in for by the
sample records (tests/test_saopaulo_model.sample_records) so the test stays fast."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
from test_saopaulo_model import sample_records

from orchestration.defs.saopaulo.assets import (
    ML_PROBABILITIES,
    RAW_SAOPAULO,
    saopaulo_place_model,
    saopaulo_raw,
)
from orchestration.resources import MLTablesResource, WarehouseResource


def _resources(warehouse: Path) -> dict:
    """The warehouse, its ML tables (DuckDB) and the run defaults of the environment now
    (CRIMECAST_INPUT_SAOPAULO)."""
    from orchestration.definitions import run_defaults

    w = WarehouseResource(database=str(warehouse))
    tables = MLTablesResource(warehouse=w)
    return {"warehouse": w, "ml_tables": tables, "run_defaults": run_defaults()}


def test_raw_asset_loads_sample_and_fails_cleanly(tmp_path, monkeypatch):
    warehouse = tmp_path / "crimecast.duckdb"
    monkeypatch.setenv("CRIMECAST_WAREHOUSE", str(warehouse))
    monkeypatch.delenv("CRIMECAST_INPUT_SAOPAULO", raising=False)
    result = dg.materialize([saopaulo_raw], resources=_resources(warehouse))
    assert result.success
    (event,) = result.get_asset_materialization_events()
    assert event.asset_key == RAW_SAOPAULO
    assert event.materialization.metadata["dagster/row_count"].value == 6000

    bad = tmp_path / "bad.csv"
    bad.write_text("BAIRRO;MARCA_OBJETO\nSE;Apple\n")
    monkeypatch.setenv("CRIMECAST_INPUT_SAOPAULO", str(bad))
    failed = dg.materialize([saopaulo_raw], resources=_resources(warehouse), raise_on_error=False)
    assert not failed.success
    message = str(failed.get_step_failure_events()[0].event_specific_data.error)
    assert str(bad) in message and "missing column" in message
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert con.execute("select count(*) from raw.saopaulo_phone_thefts").fetchone() == (6000,)
    finally:
        con.close()


def test_ml_asset_writes_tables_without_small_cells(tmp_path):
    warehouse = tmp_path / "crimecast.duckdb"
    records = sample_records()
    records["source_file"] = "sample.csv"
    records["source_row"] = range(1, len(records) + 1)
    con = duckdb.connect(str(warehouse))
    try:
        con.execute("create schema marts")
        con.register("r", records)
        con.execute("create table marts.saopaulo_phone_theft_records as select * from r")
        con.execute(
            "create table marts.saopaulo_data_quality as select 'kept' as outcome, "
            "null::varchar as place_subtype, count(*) as rows, 1.0 as share_of_rows from r"
        )
    finally:
        con.close()
    result = dg.materialize(
        [saopaulo_place_model],
        resources=_resources(warehouse),
        run_config={"ops": {"saopaulo_place_model": {"config": {"ablation": False}}}},
    )
    assert result.success
    mats = {
        e.asset_key: e.materialization.metadata for e in result.get_asset_materialization_events()
    }
    assert len(mats) == 4
    meta = {k: v.value for k, v in mats[ML_PROBABILITIES].items()}
    assert meta["cells"] == meta["cells_published"] > 0
    # Suppression is reported and adds up: published + suppressed = all cells / records.
    assert meta["cells_published"] + meta["cells_suppressed"] == meta["cells_total"]
    assert meta["records_published"] + meta["records_suppressed"] == meta["records_total"]
    assert meta["records_total"] == len(records)
    assert meta["cells_suppressed"] > 0 and meta["min_cell_records"] == 5
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        metrics = dict(con.execute("select model, log_loss from ml.saopaulo_metrics").fetchall())
        assert metrics["xgboost"] < metrics["prior"]
        assert con.execute(
            "select count(*) from ml.saopaulo_place_probabilities where n_records < 5"
        ).fetchone() == (0,)
        # every reported cell really has ≥ 5 records in the mart
        small = con.execute(
            """
            select count(*) from (select distinct neighbourhood, weekday, period, brand
                                  from ml.saopaulo_place_probabilities) p
            join (select neighbourhood, weekday, period, brand, count(*) as n
                  from marts.saopaulo_phone_theft_records group by all) m
              using (neighbourhood, weekday, period, brand)
            where m.n < 5
            """
        ).fetchone()[0]
        assert small == 0
        # The reported counts match the warehouse: mart cells vs published cells.
        cells_total, records_total = con.execute(
            "select count(*), sum(n) from (select count(*) as n "
            "from marts.saopaulo_phone_theft_records group by neighbourhood, weekday, period, "
            "brand)"
        ).fetchone()
        cells_published, records_published = con.execute(
            "select count(*), sum(n_records) from (select distinct neighbourhood, weekday, "
            "period, brand, n_records from ml.saopaulo_place_probabilities)"
        ).fetchone()
        assert (cells_total, records_total) == (meta["cells_total"], meta["records_total"])
        assert (cells_published, records_published) == (
            meta["cells_published"],
            meta["records_published"],
        )
        bad_sums = con.execute(
            "select count(*) from (select sum(probability) as s "
            "from ml.saopaulo_place_probabilities group by neighbourhood, weekday, period, "
            "brand) where abs(s - 1) > 1e-9"
        ).fetchone()[0]
        assert bad_sums == 0
        assert con.execute("select count(*) from ml.saopaulo_calibration").fetchone()[0] > 0
        assert con.execute("select distinct run_id from ml.saopaulo_metrics").fetchall() == [
            (meta["run_id"],)
        ]
        # a run without ablation types the ablation's all-missing columns as an ablation does
        types = dict(
            con.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'ml' and table_name = 'saopaulo_ablation'"
            ).fetchall()
        )
        assert (types["column"], types["kept"]) == ("VARCHAR", "BOOLEAN")
    finally:
        con.close()
    # A second run appends its vintage (Tables.append): the first run's rows stay, the same
    # number of rows under a newer run_id (the serving *_latest models keep the largest).
    again = dg.materialize(
        [saopaulo_place_model],
        resources=_resources(warehouse),
        run_config={"ops": {"saopaulo_place_model": {"config": {"ablation": False}}}},
    )
    assert again.success
    second = {
        e.asset_key: e.materialization.metadata for e in again.get_asset_materialization_events()
    }
    second_id = second[ML_PROBABILITIES]["run_id"].value
    assert second_id > meta["run_id"]
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        for key, metadata in mats.items():
            per_run = dict(
                con.execute(
                    f"select run_id, count(*) from ml.{key.path[-1]} group by run_id"
                ).fetchall()
            )
            rows = metadata["dagster/row_count"].value
            assert per_run == {meta["run_id"]: rows, second_id: rows}, key
    finally:
        con.close()
