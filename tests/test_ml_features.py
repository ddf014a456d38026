"""ml.features.build_features against hand-computed and independently computed values."""

from __future__ import annotations

import math
import statistics
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from ml.features import (
    FEATURE_COLUMNS,
    LAGS,
    ROLL_WINDOWS,
    build_features,
    from_mart,
    holidays_from_seed,
)


def _long(series: dict[str, tuple[date, list[float]]]) -> pd.DataFrame:
    rows = []
    for sid, (start, ys) in series.items():
        for i, y in enumerate(ys):
            rows.append({"series_id": sid, "ds": start + timedelta(days=i), "y": y})
    return pd.DataFrame(rows)


def _reference(long: pd.DataFrame, holidays: set[date]) -> dict[tuple[str, date], dict]:
    """Independent, row-by-row reference: dict look-ups by date, statistics module."""
    value = {(r.series_id, r.ds): float(r.y) for r in long.itertuples()}
    ref = {}
    for sid, ds in value:
        row = {}
        for k in LAGS:
            row[f"lag_{k}"] = value.get((sid, ds - timedelta(days=k)), math.nan)
        for w in ROLL_WINDOWS:
            window = [value.get((sid, ds - timedelta(days=j))) for j in range(1, w + 1)]
            if any(v is None for v in window):
                row[f"roll_mean_{w}"] = row[f"roll_std_{w}"] = math.nan
            else:
                row[f"roll_mean_{w}"] = statistics.mean(window)
                row[f"roll_std_{w}"] = statistics.stdev(window)
        doy = ds.timetuple().tm_yday
        row["day_of_week"] = ds.weekday()
        row["month"] = ds.month
        row["doy_sin"] = math.sin(2 * math.pi * doy / 365.25)
        row["doy_cos"] = math.cos(2 * math.pi * doy / 365.25)
        row["is_holiday"] = int(ds in holidays)
        ref[(sid, ds)] = row
    return ref


def test_hand_computed_values_on_a_short_series():
    start = date(2024, 1, 1)  # a Monday
    ys = list(range(1, 31))  # 1, 2, ..., 30
    out = build_features(_long({"s|a|c": (start, ys)}), holidays={date(2024, 1, 9)})
    day = out.set_index("ds")

    d8 = pd.Timestamp("2024-01-08")  # 8th day: y = 8, previous 7 days hold 1..7
    assert day.loc[d8, "lag_1"] == 7
    assert day.loc[d8, "lag_7"] == 1
    assert math.isnan(day.loc[d8, "lag_14"])
    assert day.loc[d8, "roll_mean_7"] == pytest.approx(4.0)
    assert day.loc[d8, "roll_std_7"] == pytest.approx(math.sqrt(28 / 6))  # ddof=1
    assert day.loc[d8, "day_of_week"] == 0
    assert day.loc[d8, "month"] == 1
    assert day.loc[d8, "doy_sin"] == pytest.approx(math.sin(2 * math.pi * 8 / 365.25))
    assert day.loc[d8, "doy_cos"] == pytest.approx(math.cos(2 * math.pi * 8 / 365.25))
    assert day.loc[d8, "is_holiday"] == 0
    assert day.loc[pd.Timestamp("2024-01-09"), "is_holiday"] == 1

    # The 7-day window is full only from the 8th day; the 28-day one from the 29th.
    assert math.isnan(day.loc[pd.Timestamp("2024-01-07"), "roll_mean_7"])
    assert math.isnan(day.loc[pd.Timestamp("2024-01-28"), "roll_mean_28"])
    d29 = pd.Timestamp("2024-01-29")  # previous 28 days hold 1..28
    assert day.loc[d29, "roll_mean_28"] == pytest.approx(14.5)
    assert day.loc[d29, "roll_std_28"] == pytest.approx(statistics.stdev(range(1, 29)))
    assert day.loc[d29, "lag_28"] == 1
    # The first day has no history at all.
    first = day.loc[pd.Timestamp("2024-01-01")]
    assert first[["lag_1", "roll_mean_7", "roll_std_7"]].isna().all()


def test_constant_window_has_exactly_zero_std():
    out = build_features(_long({"s|a|c": (date(2024, 1, 1), [3.0] * 40)}))
    full = out.dropna(subset=["roll_std_28"])
    assert len(full) == 12
    assert (full["roll_std_7"] == 0.0).all() and (full["roll_std_28"] == 0.0).all()


def test_matches_independent_reference_with_lag_364_and_unequal_series():
    rng = np.random.default_rng(7)
    holidays = {date(2023, 1, 16), date(2023, 7, 4), date(2024, 1, 1)}
    long = _long(
        {
            "src|b|x": (date(2023, 1, 1), rng.poisson(2.0, 400).tolist()),
            "src|a|x": (date(2023, 3, 1), rng.poisson(0.7, 380).tolist()),
        }
    )
    out = build_features(long.sample(frac=1.0, random_state=1), holidays)  # order-independent
    ref = _reference(long, holidays)
    assert len(out) == len(long)
    for r in out.itertuples():
        expected = ref[(r.series_id, r.ds.date())]
        for name, value in expected.items():
            got = getattr(r, name)
            if isinstance(value, float) and math.isnan(value):
                assert math.isnan(got), (r.series_id, r.ds, name)
            else:
                assert got == pytest.approx(value, abs=1e-9), (r.series_id, r.ds, name)
    # lag_364 is the same calendar position one year (52 weeks) back.
    b = out[out.series_id == "src|b|x"].set_index("ds")
    assert math.isnan(b.loc[pd.Timestamp("2023-12-30"), "lag_364"])
    assert b.loc[pd.Timestamp("2023-12-31"), "lag_364"] == b.loc[pd.Timestamp("2023-01-01"), "y"]


def test_target_day_value_does_not_leak_into_its_own_features():
    rng = np.random.default_rng(3)
    long = _long({"s|a|c": (date(2022, 1, 1), rng.poisson(3.0, 400).tolist())})
    target = pd.Timestamp("2022-12-31")
    changed = long.copy()
    changed.loc[pd.to_datetime(changed.ds) == target, "y"] += 100
    before = build_features(long).set_index("ds")
    after = build_features(changed).set_index("ds")
    pd.testing.assert_series_equal(
        before.loc[target, FEATURE_COLUMNS], after.loc[target, FEATURE_COLUMNS]
    )
    # ...while the next day's history does see it.
    nxt = target + pd.Timedelta(days=1)
    assert after.loc[nxt, "lag_1"] == before.loc[nxt, "lag_1"] + 100
    assert after.loc[nxt, "roll_mean_7"] == pytest.approx(before.loc[nxt, "roll_mean_7"] + 100 / 7)


def test_codes_are_dense_ranks_per_source_and_mapping_is_respected():
    start = date(2024, 1, 1)
    long = _long(
        {
            "boston|D4|Larceny": (start, [1, 2]),
            "boston|A1|Larceny": (start, [0, 1]),
            "boston|A1|Robbery": (start, [0, 0]),
            "houston|9|theft": (start, [4, 4]),
            "houston|10|theft": (start, [2, 2]),
        }
    )
    out = build_features(long).groupby("series_id")[["area_code", "category_code"]].first()
    assert out.loc["boston|A1|Larceny"].tolist() == [1, 1]
    assert out.loc["boston|D4|Larceny"].tolist() == [2, 1]
    assert out.loc["boston|A1|Robbery"].tolist() == [1, 2]
    # ranked per source, as text (like the mart's dense_rank over the VARCHAR area)
    assert out.loc["houston|10|theft"].tolist() == [1, 1]
    assert out.loc["houston|9|theft"].tolist() == [2, 1]

    mapped = build_features(
        long[long.series_id.str.startswith("boston")],
        area_codes={"A1": 5, "D4": 7},
        category_codes={"Larceny": 1, "Robbery": 3},
    )
    assert set(zip(mapped.area, mapped.area_code, strict=True)) == {("A1", 5), ("D4", 7)}
    with pytest.raises(ValueError, match="mapping"):
        build_features(long[long.series_id.str.startswith("boston")], area_codes={"A1": 1})


def test_gaps_and_duplicates_are_rejected():
    long = _long({"s|a|c": (date(2024, 1, 1), [1, 2, 3, 4])})
    with pytest.raises(ValueError, match="gap-free"):
        build_features(long.drop(index=1))
    with pytest.raises(ValueError, match="duplicate"):
        build_features(pd.concat([long, long.iloc[[0]]]))


def test_from_mart_renames_and_types_the_mart_columns():
    built = build_features(_long({"s|a|c": (date(2024, 1, 1), [1, 0, 2, 5, 1, 0, 0, 3, 1])}))
    mart = built.rename(columns={"ds": "date", "y": "incident_count"})
    mart["date"] = mart["date"].dt.date
    mart["is_holiday"] = mart["is_holiday"].astype(bool)
    mart["lag_1"] = mart["lag_1"].astype("Int64")  # nullable integer, as DuckDB may return
    back = from_mart(mart.iloc[::-1])
    pd.testing.assert_frame_equal(
        back[["series_id", "ds", "y", *FEATURE_COLUMNS]],
        built[["series_id", "ds", "y", *FEATURE_COLUMNS]],
        check_dtype=False,
    )
    assert back["is_holiday"].dtype == "int64" and back["lag_1"].dtype == "float64"


def test_holidays_from_seed_selects_one_country():
    seed = pd.DataFrame(
        {"country": ["US", "us ", "FR"], "date": ["2024-07-04", "2024-01-01", "2024-07-14"]}
    )
    assert holidays_from_seed(seed, "US") == {date(2024, 7, 4), date(2024, 1, 1)}
    assert holidays_from_seed(seed, None) == set()
