"""The serving contract lives in dbt (dbt_project/models/serving/, issue 12).

* Every serving model enforces its contract (manifest), and a model whose SQL returns another
  type than its yml declares fails the build.
* The ``*_latest`` models hold the latest run per source (France and São Paulo: of the table),
  São Paulo cells of fewer than 5 records are withheld, optional columns are typed NULLs (and
  found under the ml names, forecast_lo_80), absent origins give empty tables said absent in
  serving.availability; the published copy holds the serving schema dbt built.
* The "latest run" rule is written once: no reader (API, summary, publisher, Evidence sources)
  computes it.
* The Evidence sources compute nothing: each reads one serving table (the page rules are dbt
  models with unit tests, issue 12).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest
import yaml
from serving_dbt import DBT_DIR, REPO, build_serving, serving_target

from serving.publish import PUBLISHER_TABLES, publish_copy

SERVING_DIR = DBT_DIR / "models" / "serving"
NEW, OLD = "20240630T060000-bbbbbbbb", "20240601T060000-aaaaaaaa"


def _q(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def make_warehouse(path: Path) -> Path:
    """ml tables as the pipeline appends them: boston with two runs, houston with an older one
    only, France with three, São Paulo with two (cells of 7, 5, 3 and NULL records); no
    anomalies, no marts."""
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema ml")
        con.execute(
            "create table ml.forecasts as select run_id, date '2024-06-01' as as_of_date, source, "
            "'A' as area, 'Theft' as category, source || '|A|Theft' as series_id, "
            "date '2024-06-02' as date, cast(1 as bigint) as horizon, 'glm' as model, "
            "1.0 as forecast, 1.2 as forecast_mean, 0.0 as forecast_lo_80, 2.0 as forecast_hi_80 "
            f"from (values ('{OLD}', 'boston'), ('{NEW}', 'boston'), ('{OLD}', 'houston')) "
            "v(run_id, source)"
        )
        con.execute(
            "create table ml.france_forecasts as select 'france-' || y as run_id, 'region' as "
            "geo_level, '11' as geo_code, 'theft' as indicator, 2030 as year, "
            "'drift' as model, 1.0 as forecast from range(2021, 2024) t(y)"
        )
        con.execute(
            "create table ml.saopaulo_place_probabilities as "
            "select r as run_id, n as neighbourhood, 'SEGUNDA' as weekday, "
            "'NOITE' as period, 'Apple' as brand, 'Via Publica' as place_type, "
            "1.0 as probability, 1 as rank, k as n_records "
            "from (values ('BIG', 7), ('TINY', 3), ('EDGE', 5), ('NULL', null)) v(n, k), "
            "(values ('sp-1'), ('sp-2')) r(r)"
        )
    finally:
        con.close()
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    warehouse = make_warehouse(tmp_path_factory.mktemp("serving") / "live.duckdb")
    build_serving(warehouse)
    return warehouse


def _serving_models() -> dict[str, dict]:
    manifest = json.loads((serving_target() / "manifest.json").read_text())
    return {
        n["name"]: n
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["original_file_path"].startswith("models/serving/")
    }


def test_every_serving_model_enforces_a_typed_contract(built: Path) -> None:
    models = _serving_models()
    files = {p.stem for p in SERVING_DIR.glob("*.sql")}
    assert set(models) == files and len(files) > 25
    for name, node in models.items():
        assert node["config"]["contract"]["enforced"] is True, name
        assert node["config"]["schema"] == "serving" and "serving" in node["tags"], name
        assert node["description"], name
        assert node["columns"], name
        for column, spec in node["columns"].items():
            assert spec.get("data_type") and spec.get("description"), f"{name}.{column}"
    # the built tables have exactly the declared columns and types
    for name, node in models.items():
        got = _q(
            built,
            "select column_name, lower(data_type) from information_schema.columns "
            f"where table_schema = 'serving' and table_name = '{node['alias']}' "
            "order by ordinal_position",
        )
        assert got == [(c, s["data_type"]) for c, s in node["columns"].items()], name


def test_a_model_returning_another_type_than_its_contract_fails_the_build(
    built: Path, tmp_path: Path
) -> None:
    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    model = project / "models" / "serving" / "serving__forecasts_latest.sql"
    model.write_text(
        "select * replace (cast(horizon as varchar) as horizon)\n"
        "from (\n" + model.read_text() + "\n) as latest\n"
    )
    proc = build_serving(
        tmp_path / "w.duckdb",
        select="serving__forecasts serving__forecasts_latest",
        project_dir=project,
        check=False,
    )
    assert proc.returncode != 0
    assert "contract" in proc.stdout.lower() and "horizon" in proc.stdout, proc.stdout[-2000:]


def test_the_latest_models_hold_the_latest_run_per_source(built: Path) -> None:
    assert _q(built, "select source, run_id from serving.forecasts_latest order by 1") == [
        ("boston", NEW),
        ("houston", OLD),  # its own latest run, not boston's
    ]
    assert _q(built, "select count(*) from serving.forecasts") == [(3,)]  # every vintage
    assert _q(built, "select distinct run_id from serving.france_forecasts_latest") == [
        ("france-2023",)
    ]
    # typed by the contract; the ml names of the bounds are found, absent columns are NULL
    assert _q(
        built, "select typeof(horizon), lo_80, hi_80, lo_95 from serving.forecasts limit 1"
    ) == [("INTEGER", 0.0, 2.0, None)]


def test_small_cells_are_withheld_in_the_serving_models(built: Path) -> None:
    rows = _q(
        built,
        "select run_id, neighbourhood from serving.saopaulo_place_probabilities_latest order by 2",
    )
    assert rows == [("sp-2", "BIG"), ("sp-2", "EDGE")]  # TINY (3) and NULL withheld
    assert _q(built, "select min(n_records) from serving.saopaulo_place_probabilities") == [(5,)]


def test_absent_origins_are_empty_and_said_so(built: Path) -> None:
    present = dict(_q(built, "select name, present from serving.availability"))
    assert set(present) == {n["alias"] for n in _serving_models().values()} - {"availability"}
    assert present["forecasts"] and present["forecasts_latest"] and present["france_forecasts"]
    assert not present["anomalies"] and not present["daily_counts"]
    assert _q(built, "select count(*) from serving.anomalies_latest") == [(0,)]
    counts = dict(_q(built, "select name, row_count from serving.availability"))
    assert counts["forecasts"] == 3 and counts["forecasts_latest"] == 2


def test_the_copy_holds_the_serving_schema_with_its_retention(built: Path, tmp_path: Path):
    copy = publish_copy(built, tmp_path / "pub" / "crimecast.duckdb", keep_runs=1)
    tables = {
        r[0]
        for r in _q(
            copy, "select table_name from information_schema.tables where table_schema = 'serving'"
        )
    }
    aliases = {n["alias"] for n in _serving_models().values()}
    assert tables == aliases | {"published", "published_tables"}
    # one run per source kept, the latest; availability counts the copy's rows
    assert _q(copy, "select source, run_id from serving.forecasts order by 1") == [
        ("boston", NEW),
        ("houston", OLD),
    ]
    counts = dict(_q(copy, "select name, row_count from serving.availability"))
    assert counts["forecasts"] == 2
    withheld = dict(
        _q(copy, "select table_name, rows_withheld_old_runs from serving.published_tables")
    )
    assert withheld["serving.forecasts"] == 1


# ------------------------------------------------------------------ the rule written once
READERS = [
    REPO / "serving" / "api.py",
    REPO / "serving" / "summary.py",
    REPO / "serving" / "publish.py",
    *sorted((REPO / "dashboards" / "sources" / "crimecast").glob("*.sql")),
]
#: how a "latest run" is computed in SQL: the largest run_id, or the first run_id by rank
LATEST_RULE = re.compile(
    r"max\(\s*(\w+\.)?run_id\s*\)|order\s+by\s+(\w+\.)?run_id\s+desc\s*\)\s*=\s*1",
    re.IGNORECASE,
)


def test_the_latest_rule_is_written_once() -> None:
    for path in READERS:
        found = LATEST_RULE.findall(path.read_text())
        assert not found, f"{path.relative_to(REPO)} computes the latest run itself: {found}"
    macros = (DBT_DIR / "macros" / "serving.sql").read_text()
    assert len(LATEST_RULE.findall(macros)) == 1  # latest_run()
    for path in SERVING_DIR.glob("*.sql"):
        text = path.read_text()
        assert not LATEST_RULE.findall(text), path.name
        if path.stem.endswith("_latest"):
            assert "latest_run(" in text, path.name
    # the readers' latest tables exist
    models = yaml.safe_load((SERVING_DIR / "_serving__models.yml").read_text())["models"]
    aliases = {m["config"]["alias"] for m in models}
    for path in READERS:
        for table in re.findall(r"serving\.(\w+_latest)", path.read_text()):
            assert table in aliases, f"{path.name}: serving.{table} is not a serving model"


# ------------------------------------------------------------------ sources compute nothing
SOURCES = REPO / "dashboards" / "sources" / "crimecast"
#: SQL that holds a rule (joins, aggregates, labels, windows, inline tables, subqueries in FROM)
SOURCE_LOGIC = re.compile(
    r"\b(join|group\s+by|case|over|having|values|distinct)\b|\bfrom\s*\("
    r"|\b(sum|count|min|max|avg|string_agg)\s*\(",
    re.IGNORECASE,
)


def _without_comments(sql: str) -> str:
    return "\n".join(line.split("--")[0] for line in sql.splitlines())


def test_the_evidence_sources_compute_nothing() -> None:
    """Each source query reads one serving table (the placeholder row idiom aside) and holds no
    rule: a join, an aggregate, a CASE or a window belongs in a dbt serving model."""
    models = yaml.safe_load((SERVING_DIR / "_serving__models.yml").read_text())["models"]
    tables = {m["config"]["alias"] for m in models} | set(PUBLISHER_TABLES)
    paths = sorted(SOURCES.glob("*.sql"))
    assert len(paths) > 15
    for path in paths:
        sql = _without_comments(path.read_text())
        found = SOURCE_LOGIC.findall(sql)
        assert not found, f"{path.name} computes in the source query: {found}"
        read = set(re.findall(r"\bserving\.(\w+)", sql))
        assert len(read) == 1 and read <= tables, f"{path.name} reads {read}"
