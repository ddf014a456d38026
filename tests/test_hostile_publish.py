"""The published copy holds only what may be published (issue 17, items 2 and 7).

* A freshly published copy of a real pipeline run: every table in it (information_schema) is
  on the allow-list (``PUBLISHED_TABLES``) or in ``serving``; nothing record-level; no cell of
  fewer than 5 records in any table that counts records; readers (serving views, the API, the
  run summary) still work on it; it keeps the latest ``CRIMECAST_PUBLISH_KEEP_RUNS`` runs.
* Hostile warehouses built here: record-level and unknown tables, São Paulo cells of 3
  records, a 4-record calibration bin, many vintages, a count column that vanished.
* A publisher killed mid-copy leaves a temp file; the next publication removes it (and only
  files of the publisher's own name pattern).
* ``merge_small_bins`` (ml/saopaulo/metrics.py).
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
import yaml
from conftest import copy_warehouse

from serving import publish
from serving.publish import (
    MIN_CELL_RECORDS,
    PUBLISHED_TABLES,
    publish_copy,
    temp_name_pattern,
)

REPO = Path(__file__).resolve().parents[1]
ALLOWED = {t.name for t in PUBLISHED_TABLES}
COUNTED = {t.name: t.record_count for t in PUBLISHED_TABLES if t.record_count}
#: the serving contract: the dbt serving models (their tables) and the publisher's two tables
SERVING = {
    m["config"]["alias"]
    for m in yaml.safe_load(
        (REPO / "dbt_project" / "models" / "serving" / "_serving__models.yml").read_text()
    )["models"]
} | {"published", "published_tables"}
RECORD_LEVEL = {
    "raw.incidents",
    "raw.saopaulo_phone_thefts",
    "marts.saopaulo_phone_theft_records",
    "staging.stg_police__incidents",
    "intermediate.int_incidents__checked",
    "intermediate.int_saopaulo__phone_thefts",
}
#: column names that count records; a São Paulo table holding one must declare it
COUNT_LIKE = re.compile(r"^(n|count|rows|n_records|records|.*_count)$")
#: a file's number of rows is lineage (how big the download was), not a cell of records
LINEAGE_COUNTS = {("raw.saopaulo_source_files", "rows")}


def _tables(db: Path) -> dict[str, list[str]]:
    """Every table and view of ``db``: {"schema.name": [columns]}."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "select table_schema || '.' || table_name, list(column_name order by ordinal_position) "
            "from information_schema.columns group by 1"
        ).fetchall()
    finally:
        con.close()
    return dict(rows)


def _q(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _withheld(copy: Path) -> dict[str, tuple]:
    return {
        r[0]: r[1:]
        for r in _q(
            copy,
            "select table_name, row_count, rows_withheld_small_cells, rows_withheld_old_runs, "
            "runs_kept from serving.published_tables",
        )
    }


def assert_only_publishable(copy: Path) -> None:
    """The check of issue 17: every table of the copy against the allow-list and the < 5 rule."""
    tables = _tables(copy)
    base = {t for t in tables if not t.startswith("serving.")}
    assert base <= ALLOWED, f"not on the allow-list: {sorted(base - ALLOWED)}"
    assert not base & RECORD_LEVEL
    assert {t.split(".", 1)[1] for t in tables if t.startswith("serving.")} <= SERVING
    for table, columns in tables.items():
        if "saopaulo" in table and not table.startswith("serving."):
            counts = [
                c for c in columns if COUNT_LIKE.match(c) and (table, c) not in LINEAGE_COUNTS
            ]
            assert counts == ([COUNTED[table]] if table in COUNTED else []), (
                f"{table}: count columns {counts} not declared in PUBLISHED_TABLES"
            )
    for table, column in COUNTED.items():
        if table in tables:
            small = _q(copy, f'select count(*) from {table} where not ("{column}" >= 5)')[0][0]
            assert small == 0, f"{table}: {small} rows with {column} < 5"
    for table in tables:  # every serving table answers, none with small cells
        if table.startswith("serving."):
            _q(copy, f"select * from {table}")
        if table.startswith("serving.saopaulo_place_probabilities"):
            assert not _q(copy, f"select * from {table} where not (n_records >= 5)"), table


# ------------------------------------------------------------------ the real pipeline, once
@pytest.fixture(scope="module")
def site(sample_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A copy of the session's sample warehouse (the whole graph: Boston, Houston, France, São
    Paulo; first forecasting run and its published copy); then a second forecasting run
    published with CRIMECAST_PUBLISH_KEEP_RUNS=1."""
    from orchestration.definitions import ALL_ASSETS, build_resources
    from orchestration.defs.incidents.ml import ml_forecasts
    from orchestration.defs.serving.publish import PUBLISHED

    root = tmp_path_factory.mktemp("hostile_publish")
    warehouse = copy_warehouse(sample_warehouse, root / "w")
    published = warehouse.parent / "published" / "crimecast.duckdb"
    first = _q(published, "select distinct run_id from ml.forecasts")
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("CRIMECAST_"):
                mp.delenv(name)
        mp.setenv("CRIMECAST_WAREHOUSE", str(warehouse))
        mp.setenv("CRIMECAST_SKIP_DASHBOARDS", "1")
        mp.setenv("CRIMECAST_PUBLISH_KEEP_RUNS", "1")
        again = dg.materialize(
            ALL_ASSETS,
            selection=dg.AssetSelection.assets(*ml_forecasts.keys, PUBLISHED),
            resources=build_resources(warehouse),
        )
        assert again.success
    return {"warehouse": warehouse, "published": published, "first_runs": first, "root": root}


def test_a_fresh_copy_holds_only_allow_listed_tables_and_no_small_cells(site: dict) -> None:
    live = _tables(site["warehouse"])
    assert set(live) >= RECORD_LEVEL  # the warehouse has them: the copy leaves them out
    assert {"raw.load_log", "ml.model_runs", "marts.daily_features"} <= set(live)
    copy = _tables(site["published"])
    assert {
        "ml.saopaulo_place_probabilities",
        "ml.saopaulo_calibration",
        "ml.saopaulo_metrics",
        "ml.forecasts",
        "marts.daily_counts",
        "marts.france_annual_rates",
    } <= set(copy)
    assert_only_publishable(site["published"])
    assert {t.split(".", 1)[1] for t in copy if t.startswith("serving.")} == SERVING
    present = dict(_q(site["published"], "select name, present from serving.availability"))
    assert present["saopaulo_place_probabilities"] and present["forecasts"]


def test_calibration_bins_are_merged_in_the_warehouse_and_add_up(site: dict) -> None:
    w = site["warehouse"]
    assert _q(w, "select min(count) from ml.saopaulo_calibration")[0][0] >= MIN_CELL_RECORDS
    # every held-out record is still in exactly one (merged) bin per model and class
    n = dict(_q(w, "select model, n from ml.saopaulo_metrics"))
    per = _q(w, "select model, class, sum(count) from ml.saopaulo_calibration group by 1, 2")
    assert per and all(total == n[model] for model, _c, total in per)
    # merged bins do not overlap (empty bins are left out, so there may be gaps)
    for model, cls in {(m, c) for m, c, _t in per}:
        bounds = _q(
            w,
            "select bin_lower, bin_upper from ml.saopaulo_calibration "
            "where model = ? and class = ? order by bin_lower",
            [model, cls],
        )
        assert all(a[1] <= b[0] + 1e-12 for a, b in zip(bounds, bounds[1:], strict=False))


def test_the_copy_keeps_the_latest_runs_only(
    site: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CRIMECAST_PUBLISH_KEEP_RUNS", raising=False)
    w, copy = site["warehouse"], site["published"]
    live_runs = sorted(r[0] for r in _q(w, "select distinct run_id from ml.forecasts"))
    assert len(live_runs) == 2 and site["first_runs"] == [(live_runs[0],)]
    assert _q(copy, "select distinct run_id from ml.forecasts") == [(live_runs[-1],)]
    withheld = _withheld(copy)
    old_rows = _q(w, "select count(*) from ml.forecasts where run_id = ?", [live_runs[0]])[0][0]
    assert withheld["ml.forecasts"][2:] == (old_rows, 1)  # counted, one run kept
    # the default keeps both runs
    both = publish_copy(w, tmp_path / "crimecast.duckdb")
    assert len(_q(both, "select distinct run_id from ml.backtest_predictions")) == 2
    assert _withheld(both)["ml.forecasts"][2:] == (0, 2)


def test_readers_work_on_the_copy(site: dict, capsys: pytest.CaptureFixture[str]) -> None:
    from serving.api import create_app
    from serving.summary import print_summary

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    client = TestClient(create_app(site["published"], rate=1000, burst=1000))
    series = client.get("/series")
    assert series.status_code == 200, series.text
    assert client.get("/health").json()["status"] == "ok"
    print_summary(site["published"])
    out = capsys.readouterr().out
    assert "houston" in out and "saopaulo" in out and "france" in out


def test_a_killed_publisher_leaves_a_temp_file_that_the_next_one_removes(
    site: dict, tmp_path: Path
) -> None:
    target = tmp_path / "out" / "crimecast.duckdb"
    target.parent.mkdir()
    decoys = [
        ".crimecast.duckdb.notes.tmp",  # not 8 hex digits
        ".other.duckdb.0123abcd.tmp",  # another target's
        "crimecast.duckdb.0123abcd.tmp",  # no leading dot
        ".crimecast.duckdb.0123abcd.tmp.bak",
    ]
    for name in decoys:
        (target.parent / name).write_text("not the publisher's")
    proc = subprocess.Popen(
        [sys.executable, "-m", "serving.publish", "--warehouse", str(site["warehouse"])]
        + ["--target", str(target)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pattern, stray = temp_name_pattern(target), []
    deadline = time.monotonic() + 300
    while not stray and proc.poll() is None and time.monotonic() < deadline:
        stray = [p for p in target.parent.iterdir() if pattern.fullmatch(p.name)]
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert stray and proc.returncode == -signal.SIGKILL, "the publisher was not caught mid-copy"
    assert stray[0].exists() and not target.exists()

    publish_copy(site["warehouse"], target)
    left = sorted(p.name for p in target.parent.iterdir())
    assert left == sorted([*decoys, "crimecast.duckdb"])
    assert_only_publishable(target)


def test_a_publisher_waits_for_another_and_gives_up_with_one_line(
    site: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "crimecast.duckdb"
    live_tmp = tmp_path / ".crimecast.duckdb.89abcdef.tmp"  # another publisher's, in progress
    live_tmp.write_text("being written")
    monkeypatch.setattr(publish, "LOCK_TIMEOUT_S", 0.5)
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(RuntimeError, match=r"another publication into .* retry") as err:
            publish_copy(site["warehouse"], target, keep_runs=1)
    finally:
        os.close(fd)
    assert "\n" not in str(err.value)
    assert live_tmp.exists() and not target.exists()  # nothing touched while it was held


# ------------------------------------------------------------------- hostile warehouses
def make_hostile_warehouse(path: Path) -> Path:
    """Everything a warehouse may hold that must not be published, beside what may: record
    tables, staging, meta, an unknown mart, São Paulo cells of 3 records, a 4-record
    calibration bin, 7 vintages of boston forecasts and one of houston, 3 of France."""
    con = duckdb.connect(str(path))
    try:
        for schema in ("raw", "staging", "marts", "meta", "ml", "seeds"):
            con.execute(f"create schema {schema}")
        con.execute("create table raw.incidents as select 'boston' as source, 'I1' as incident_id")
        con.execute(
            "create table raw.saopaulo_phone_thefts as "
            "select 'SE' as bairro, 'Apple' as marca_objeto, 31 as idade, 'F' as sexo"
        )
        con.execute("create table staging.stg_police__incidents as select * from raw.incidents")
        con.execute("create table marts.saopaulo_phone_theft_records as select 'SE' as bairro")
        con.execute("create table marts.new_unreviewed_mart as select 1 as n_records")
        con.execute("create table meta.incremental_builds as select 'm' as model")
        con.execute("create table ml.model_runs as select 'r' as run_id, '/srv/a.pkl' as path")
        con.execute("create table seeds.holidays as select date '2024-01-01' as date")
        con.execute("create view marts.a_view as select * from raw.incidents")
        con.execute(
            "create table ml.saopaulo_place_probabilities as "
            "select 'sp-1' as run_id, n as neighbourhood, 'SEGUNDA' as weekday, "
            "'NOITE' as period, 'Apple' as brand, 'Via Publica' as place_type, "
            "1.0 as probability, 1 as rank, k as n_records "
            "from (values ('BIG', 7), ('TINY', 3), ('EDGE', 5), ('NULL', null)) v(n, k)"
        )
        con.execute(
            "create table ml.saopaulo_calibration as select 'sp-1' as run_id, 'xgboost' as model, "
            "'Via Publica' as class, b as bin, b / 10 as bin_lower, (b + 1) / 10 as bin_upper, "
            "0.5 as mean_predicted, 0.5 as observed_frequency, c as count "
            "from (values (0, 40), (1, 4), (2, 60)) v(b, c)"
        )
        con.execute(
            "create table ml.forecasts as select run_id, date '2024-06-01' as as_of_date, "
            "source, 'A' as area, 'Theft' as category, source || '|A|Theft' as series_id, "
            "date '2024-06-02' as date, 1 as horizon, 'glm' as model, 1.0 as forecast "
            "from (select '2024060' || i || 'T060000-aaaaaaaa' as run_id, 'boston' as source "
            "from range(1, 8) t(i) union all "
            "select '20230101T060000-bbbbbbbb', 'houston')"
        )
        con.execute(
            "create table ml.france_forecasts as select 'france-' || y as run_id, 'region' as "
            "geo_level, '11' as geo_code, 'theft' as indicator, 2030 as year, "
            "'drift' as model, 1.0 as forecast from range(2021, 2024) t(y)"
        )
    finally:
        con.close()
    return path


def test_a_hostile_warehouse_publishes_only_what_may_be(tmp_path: Path) -> None:
    live = make_hostile_warehouse(tmp_path / "live.duckdb")
    copy = publish_copy(live, tmp_path / "pub" / "crimecast.duckdb", keep_runs=5)
    assert {t for t in _tables(copy) if not t.startswith("serving.")} == {
        "ml.saopaulo_place_probabilities",
        "ml.saopaulo_calibration",
        "ml.forecasts",
        "ml.france_forecasts",
    }
    assert_only_publishable(copy)
    kept = _q(copy, "select neighbourhood from ml.saopaulo_place_probabilities order by 1")
    assert kept == [("BIG",), ("EDGE",)]
    assert _q(copy, "select bin from ml.saopaulo_calibration order by 1") == [(0,), (2,)]
    runs = _q(copy, "select source, count(*), min(run_id) from ml.forecasts group by 1 order by 1")
    assert runs == [("boston", 5, "20240603T060000-aaaaaaaa"), ("houston", 1, runs[1][2])]
    assert _q(copy, "select count(*) from ml.france_forecasts") == [(3,)]
    assert _withheld(copy) == {
        "ml.saopaulo_place_probabilities": (2, 2, 0, 1),  # TINY (3) and NULL withheld
        "ml.saopaulo_calibration": (2, 1, 0, 1),
        "ml.forecasts": (6, 0, 2, 6),  # 5 boston runs + 1 houston run kept
        "ml.france_forecasts": (3, 0, 0, 3),
    }
    # a warehouse dbt never built has no serving models: the copy has the publisher's tables
    # only (the latest-run rule of serving.france_forecasts_latest: tests/test_serving_contract.py)
    serving = {t for t in _tables(copy) if t.startswith("serving.")}
    assert serving == {"serving.published", "serving.published_tables"}
    fewer = publish_copy(live, tmp_path / "pub2" / "crimecast.duckdb", keep_runs=2)
    assert _q(fewer, "select count(*) from ml.france_forecasts") == [(2,)]


def test_a_count_column_that_vanished_stops_the_publication(tmp_path: Path) -> None:
    live = make_hostile_warehouse(tmp_path / "live.duckdb")
    con = duckdb.connect(str(live))
    try:
        con.execute("alter table ml.saopaulo_calibration rename column count to records")
    finally:
        con.close()
    target = tmp_path / "crimecast.duckdb"
    with pytest.raises(ValueError, match=r"ml\.saopaulo_calibration has no column 'count'") as e:
        publish_copy(live, target)
    assert "\n" not in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.duckdb"]  # no copy, no temp


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "0x5"])
def test_a_bad_keep_runs_is_one_line_and_keeps_the_copy(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = make_hostile_warehouse(tmp_path / "live.duckdb")
    target = publish_copy(live, tmp_path / "pub" / "crimecast.duckdb")
    before = target.read_bytes()
    monkeypatch.setenv("CRIMECAST_PUBLISH_KEEP_RUNS", value)
    proc = subprocess.run(
        [sys.executable, "-m", "serving.publish", "--warehouse", str(live)]
        + ["--target", str(target)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"publish: CRIMECAST_PUBLISH_KEEP_RUNS={value!r} must be a whole number of runs, at least 1"
    )
    assert target.read_bytes() == before


# ------------------------------------------------------------------------ calibration bins
def test_small_calibration_bins_are_merged_with_their_neighbours() -> None:
    from ml.saopaulo import merge_small_bins

    def bins(model: str, counts: list[int]) -> list[dict]:
        return [
            {
                "model": model,
                "class": "Via Publica",
                "bin": b,
                "bin_lower": b / 10,
                "bin_upper": (b + 1) / 10,
                "mean_predicted": b / 10 + 0.05,
                "observed_frequency": 0.1 * b,
                "count": c,
            }
            for b, c in enumerate(counts)
            if c
        ]

    table = pd.DataFrame(
        bins("a", [4, 100, 0, 1, 2, 50, 3]) + bins("b", [2, 2]) + bins("c", [9, 9])
    )
    merged, counts = merge_small_bins(table, 5)
    a = merged[merged["model"] == "a"].reset_index(drop=True)
    # 4 + 100; then 1 + 2 + 50, and the last 3 joins them (too small alone)
    assert a["count"].tolist() == [104, 56]
    assert a["bin"].tolist() == [0, 3]
    assert a["bin_lower"].tolist() == pytest.approx([0.0, 0.3])
    assert a["bin_upper"].tolist() == pytest.approx([0.2, 0.7])
    assert a.loc[0, "mean_predicted"] == pytest.approx((4 * 0.05 + 100 * 0.15) / 104)
    assert a.loc[0, "observed_frequency"] == pytest.approx(100 * 0.1 / 104)
    assert set(merged["model"]) == {"a", "c"}  # b has 4 records in all: suppressed
    assert (merged.loc[merged["model"] == "c", "count"] == 9).all()  # untouched
    assert counts == {"calibration_bins_merged": 4, "calibration_bins_suppressed": 2}
    assert list(merged.columns) == list(table.columns)
    assert (merged["count"] >= 5).all()


def test_the_publisher_the_model_and_dbt_use_one_k() -> None:
    from ml.project import dbt_project_var
    from orchestration.defs.saopaulo.assets import SaoPauloModelConfig

    assert MIN_CELL_RECORDS == dbt_project_var("min_cell_records") == 5
    assert SaoPauloModelConfig().min_cell_records == MIN_CELL_RECORDS
