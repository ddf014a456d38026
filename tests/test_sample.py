"""Sample generators: deterministic, real source schemas, realistic structure, loadable."""

from __future__ import annotations

import csv
import hashlib
import time
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ingest.loader import load_source
from ingest.mapping import load_mapping
from samples.incidents import (
    BOSTON_CATEGORIES,
    BOSTON_CURRENT_COLUMNS,
    BOSTON_LEGACY_COLUMNS,
    HOUSTON_COLUMNS,
    us_federal_holidays,
    write_sample,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SEED_FILE = REPO_ROOT / "dbt_project" / "seeds" / "category_map.csv"


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    root = tmp_path_factory.mktemp("samples")
    out = {}
    for name in ("boston", "houston"):
        t0 = time.perf_counter()
        out[name] = write_sample(name, root / name)
        assert time.perf_counter() - t0 < 10, f"{name} sample generation too slow"
    return out


def _read(path: Path, encoding: str) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)


def _sha(paths: list[Path]) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


@pytest.mark.parametrize("name", ["boston", "houston"])
def test_samples_are_deterministic(
    name: str, samples: dict[str, list[Path]], tmp_path: Path
) -> None:
    again = write_sample(name, tmp_path / "again")  # a fresh folder: generated again
    assert [p.name for p in again] == [p.name for p in samples[name]]
    assert _sha(again) == _sha(samples[name])  # same bytes
    other_seed = write_sample(name, tmp_path / "other", seed=1, years=1)
    assert _sha(other_seed)[0] != _sha(samples[name])[0]


def test_boston_sample_schemas(samples: dict[str, list[Path]]) -> None:
    legacy_path, current_path = samples["boston"]
    with legacy_path.open(encoding="utf-8") as fh:
        assert next(csv.reader(fh)) == list(BOSTON_LEGACY_COLUMNS)  # unnamed first, `date` last
    raw = current_path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # latin-1 encoded, with accented street names
    assert "PLAZA MUÑOZ MARÍN" in raw.decode("latin-1")
    with current_path.open(encoding="latin-1") as fh:
        assert next(csv.reader(fh)) == list(BOSTON_CURRENT_COLUMNS)

    legacy = _read(legacy_path, "utf-8")
    current = _read(current_path, "latin-1")
    assert 150_000 <= len(legacy) + len(current) <= 250_000
    # legacy: group filled, newest first, legacy timestamps, Y/blank shooting
    assert (legacy["OFFENSE_CODE_GROUP"] != "").all()
    assert legacy["OCCURRED_ON_DATE"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:00").all()
    assert legacy["OCCURRED_ON_DATE"].iloc[0] > legacy["OCCURRED_ON_DATE"].iloc[-1]
    assert set(legacy["SHOOTING"]) == {"", "Y"}
    assert (legacy["date"] == legacy["OCCURRED_ON_DATE"].str[:10]).all()
    # current: empty group and UCR part, "+00" local timestamps that agree with HOUR, 0/1
    assert (current["OFFENSE_CODE_GROUP"] == "").all() and (current["UCR_PART"] == "").all()
    assert current["OCCURRED_ON_DATE"].str.endswith("+00").all()
    assert (current["OCCURRED_ON_DATE"].str[11:13].astype(int) == current["HOUR"].astype(int)).all()
    assert set(current["SHOOTING"]) == {"0", "1"}
    # dirty rows: test records first, blank districts, exact duplicates
    assert list(current["INCIDENT_NUMBER"].iloc[:3]) == ["PLTEST001", "PLTEST002", "PLTEST003"]
    for df in (legacy.drop(columns=[legacy.columns[0]]), current):  # legacy: index differs
        assert 0 < (df["DISTRICT"] == "").sum() < 0.01 * len(df)
        assert 0 < df.duplicated().sum() < 0.005 * len(df)
    # period, districts, groups
    ts = pd.to_datetime(
        pd.concat([legacy["OCCURRED_ON_DATE"], current["OCCURRED_ON_DATE"].str[:19].iloc[3:]])
    )
    assert ts.min().date() == date(2021, 1, 1) and ts.max().date() == date(2024, 6, 30)
    districts = set(legacy["DISTRICT"]) | set(current["DISTRICT"])
    assert {
        "A1",
        "A15",
        "A7",
        "B2",
        "B3",
        "C6",
        "C11",
        "D4",
        "D14",
        "E5",
        "E13",
        "E18",
    } <= districts
    assert legacy["OFFENSE_CODE_GROUP"].nunique() == len(BOSTON_CATEGORIES) >= 8


def test_boston_codes_map_back_to_groups(samples: dict[str, list[Path]]) -> None:
    legacy = _read(samples["boston"][0], "utf-8")
    code_to_group = {code: c.name for c in BOSTON_CATEGORIES for code, _, _ in c.codes}
    # every (code, group) pair of the legacy file agrees with the generator's table
    pairs = set(zip(legacy["OFFENSE_CODE"], legacy["OFFENSE_CODE_GROUP"], strict=True))
    assert pairs == set(code_to_group.items())
    # the table documented for the dbt seed lists exactly these codes
    doc = (REPO_ROOT / "sources" / "boston_sample_codes.md").read_text()
    for code, group in code_to_group.items():
        assert f"boston,offense_code,{code},{group}\n" in doc
    if SEED_FILE.exists():  # the seed (owned by dbt) maps every sample code to its group
        seed = pd.read_csv(SEED_FILE, dtype=str)
        seed = seed[(seed["source"] == "boston") & (seed["match_on"] == "offense_code")]
        mapped = dict(zip(seed["raw_value"].str.strip(), seed["category"].str.strip(), strict=True))
        assert {c: mapped.get(c) for c in code_to_group} == code_to_group


def test_boston_sample_statistics(samples: dict[str, list[Path]]) -> None:
    legacy = _read(samples["boston"][0], "utf-8")
    day = pd.to_datetime(legacy["OCCURRED_ON_DATE"].str[:10])
    daily = day.value_counts().sort_index()
    assert len(daily) == 730  # every day of 2021-2022 has incidents
    # one series (district × group): over-dispersed daily counts (negative binomial)
    one = legacy[(legacy["DISTRICT"] == "B2") & (legacy["OFFENSE_CODE_GROUP"] == "Larceny")]
    per_day = (
        pd.to_datetime(one["OCCURRED_ON_DATE"].str[:10])
        .value_counts()
        .reindex(daily.index, fill_value=0)
    )
    assert per_day.var() > 1.2 * per_day.mean()
    # weekly seasonality: violent crime peaks on weekends, larceny on weekdays
    violent = legacy["OFFENSE_CODE_GROUP"].isin(["Simple Assault", "Aggravated Assault"])
    weekend = day.dt.dayofweek >= 5
    assert violent[weekend].mean() > violent[~weekend].mean()
    # yearly seasonality: summer above winter
    month = day.dt.month
    assert (month.isin([6, 7, 8])).sum() > 1.1 * (month.isin([12, 1, 2])).sum()


def test_houston_sample_schema_and_counts(samples: dict[str, list[Path]]) -> None:
    paths = samples["houston"]
    assert [p.name for p in paths] == ["houston_2022.csv", "houston_2023.csv"]
    df = pd.concat([_read(p, "utf-8") for p in paths], ignore_index=True)
    assert list(df.columns) == list(HOUSTON_COLUMNS) and len(HOUSTON_COLUMNS) == 17
    assert 80_000 <= len(df) <= 150_000
    assert set(df["offense"]) == {
        "theft",
        "burglary",
        "auto theft",
        "aggravated assault",
        "robbery",
        "rape",
        "murder",
    }
    shares = df["offense"].value_counts(normalize=True)
    assert shares.index[0] == "theft" and 0.45 < shares["theft"] < 0.62
    prefixes = df["beat"].str.extract(r"^(\d+)")[0]
    assert prefixes.nunique() == 20
    assert df["beat"].str.fullmatch(r"\d+[A-Z]\d0").all()
    assert df["date"].str.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}").all()
    # `time` is UTC, `date` + `hour` local Central time
    local = pd.to_datetime(df["date"], format="%m/%d/%Y") + pd.to_timedelta(
        df["hour"].astype(int), unit="h"
    )
    utc = pd.to_datetime(df["time"]).dt.tz_localize("UTC").dt.tz_convert("America/Chicago")
    assert (utc.dt.tz_localize(None) == local).mean() > 0.999
    # counts: mostly 1, a few 2 / 3, and reversals of an earlier identical record
    number = df["number"].astype(int)
    assert set(number) == {-1, 1, 2, 3} and (number == 2).sum() > 100
    rev = df[number == -1]
    assert 50 < len(rev) < 0.01 * len(df)
    key = [c for c in HOUSTON_COLUMNS if c != "number"]
    # every reversal repeats an identical `number` = 1 record that comes EARLIER in the data
    first_original = (
        df[number == 1]
        .rename_axis("original_row")
        .reset_index()
        .groupby(key, dropna=False)["original_row"]
        .min()
        .reset_index()
    )
    matched = (
        rev.rename_axis("reversal_row").reset_index().merge(first_original, on=key, how="left")
    )
    assert len(matched) == len(rev)
    assert matched["original_row"].notna().all(), "a reversal without an original record"
    assert (matched["original_row"] < matched["reversal_row"]).all()


def test_scale_and_years(tmp_path: Path) -> None:
    small = write_sample("houston", tmp_path / "h", scale=0.2, years=1)
    assert [p.name for p in small] == ["houston_2022.csv"]
    n = sum(1 for _ in small[0].open()) - 1
    assert 8_000 < n < 14_000  # ≈ 150/day × 0.2 × 365
    b = write_sample("boston", tmp_path / "b", scale=0.1, years=2)
    assert [p.name for p in b] == ["boston_legacy_2021_2021.csv", "boston_current_2022_2022.csv"]
    # a previous sample's files with other names are removed from the folder
    write_sample("houston", tmp_path / "h", scale=0.05, years=2)
    assert sorted(p.name for p in (tmp_path / "h").glob("*.csv")) == [
        "houston_2022.csv",
        "houston_2023.csv",
    ]
    with pytest.raises(ValueError, match="unknown sample generator 'paris'"):
        write_sample("paris", tmp_path / "p")


def test_unchanged_sample_is_reused_and_a_damaged_one_regenerated(tmp_path: Path) -> None:
    first = write_sample("houston", tmp_path, scale=0.05, years=1)
    stamp = first[0].stat().st_mtime_ns
    digest = _sha(first)
    assert write_sample("houston", tmp_path, scale=0.05, years=1) == first
    assert first[0].stat().st_mtime_ns == stamp  # not rewritten
    first[0].write_text("tampered")
    again = write_sample("houston", tmp_path, scale=0.05, years=1)
    assert _sha(again) == digest  # regenerated, same bytes
    other = write_sample("houston", tmp_path, scale=0.05, years=1, seed=7)
    assert _sha(other) != digest  # other arguments: regenerated


def test_us_federal_holidays() -> None:
    h = us_federal_holidays(range(2023, 2024))
    assert len(h) == 11
    assert {date(2023, 1, 16), date(2023, 5, 29), date(2023, 11, 23), date(2023, 6, 19)} <= h


def test_samples_load_through_the_mappings(tmp_warehouse: Path) -> None:
    """End to end: input `sample` generates into the sample folder and loads; a second load
    reuses the identical files and adds nothing."""
    con = duckdb.connect(str(tmp_warehouse))
    try:
        sample_root = tmp_warehouse.parent / "sample"
        boston = load_mapping(REPO_ROOT / "sources" / "boston.yml")
        r = load_source(con, boston, None, sample_dir=sample_root / "boston")
        assert len(r.files_loaded) == 2 and 150_000 <= r.rows_inserted <= 250_000
        assert r.rows_flagged == {"test_record": 3} and r.rows_unparseable_timestamp == 0
        assert str(r.min_occurred_at)[:10] == "2021-01-01"
        assert str(r.max_occurred_at)[:10] == "2024-06-30"
        assert all(f.startswith(str(sample_root / "boston")) for f in r.files_loaded)
        enc = dict(
            con.execute(
                "select regexp_extract(source_file, '[^/]+$'), encoding from raw.source_files"
            ).fetchall()
        )
        assert enc == {
            "boston_legacy_2021_2022.csv": "utf-8",
            "boston_current_2023_2024.csv": "latin-1",
        }
        # current-schema rows have no category but an offense code for dbt's seed
        n_no_cat, n_no_code = con.execute(
            "select count(*) filter (where category_raw is null), count(*) filter (where "
            "category_raw is null and offense_code is null) from raw.incidents"
        ).fetchone()
        assert n_no_cat > 50_000 and n_no_code == 0

        houston = load_mapping(REPO_ROOT / "sources" / "houston.yml")
        h = load_source(con, houston, "sample", sample_dir=sample_root / "houston")
        assert h.rows_unparseable_timestamp == 0
        neg, areas = con.execute(
            "select count(*) filter (where incident_count < 0), count(distinct area) "
            "from raw.incidents where source = 'houston'"
        ).fetchone()
        assert neg > 50 and areas == 20

        again = load_source(con, boston, "sample", sample_dir=sample_root / "boston")
        assert again.rows_inserted == 0 and len(again.files_skipped) == 2
        assert again.rows_total == r.rows_inserted
        assert np.isclose(
            con.execute("select count(*) from raw.incidents").fetchone()[0],
            r.rows_inserted + h.rows_inserted,
        )
    finally:
        con.close()
