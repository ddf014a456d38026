"""ingest/parquet.py's export, without Spark: raw.incidents lands as one Hive-style partition
per source (``source=<name>/``), every other source table as one file, and DuckDB reads the
partitioned folder back to the same rows."""

from __future__ import annotations

import duckdb

from ingest.parquet import PARTITION_BY, export_parquet, table_folder


def test_incidents_are_partitioned_by_source_and_read_back_equal(tmp_path):
    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    con.execute("create schema raw; create schema ml")
    con.execute(
        "create table raw.incidents as select * from (values "
        "('boston', 'B1', 3, timestamp '2024-01-01 10:00'), "
        "('boston', 'B2', 4, timestamp '2024-01-02 11:00'), "
        "('houston', 'H1', 5, timestamp '2024-01-01 12:00')"
        ") as t(source, incident_id, n, occurred_at)"
    )
    con.execute("create table ml.model_runs as select 1 as run_id")
    con.close()

    names = export_parquet(db, tmp_path / "out")
    assert names == ["ml.model_runs", "raw.incidents"]
    assert PARTITION_BY["raw.incidents"] == ("source",)
    incidents = table_folder(tmp_path / "out", "raw.incidents")
    assert sorted(p.name for p in incidents.iterdir()) == ["source=boston", "source=houston"]
    assert (table_folder(tmp_path / "out", "ml.model_runs") / "data.parquet").is_file()

    con = duckdb.connect()
    con.execute("set timezone = 'UTC'")
    back = con.execute(
        f"select source, incident_id, n, occurred_at from read_parquet('{incidents}/**/*.parquet',"
        " hive_partitioning = true) order by incident_id"
    ).fetchall()
    original = duckdb.connect(str(db), read_only=True)
    original.execute("set timezone = 'UTC'")
    want = original.execute(
        "select source, incident_id, n, occurred_at::timestamptz from raw.incidents"
        " order by incident_id"
    ).fetchall()
    assert back == want
