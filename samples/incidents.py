"""Deterministic sample incident files in the REAL published schemas (Boston, Houston).

The project's default run loads these instead of real downloads. Counts per (area, category,
day) follow a negative binomial (over-dispersed) around a mean with weekly and yearly
seasonality, US federal holiday effects and a slow trend; rows then get a time of day, codes,
descriptions, streets and coordinates. Files include the dirty rows the loader and dbt must
handle (test records, blank districts, exact duplicates, reversal records).

`write_sample(name, out_dir, scale=…, years=…)`: `scale` multiplies the daily rates (issue #8
scales to ~10M rows), `years` sets the period length. Rows are generated and appended one
calendar year at a time, so memory stays bounded when scaled up. Same arguments → same bytes.

Houston also takes `areas` and `categories` (more police districts / offence names than the 20
and 7 of the real file: synthetic ones are added after the real ones), `start` (first day) and
`days` (period length in days instead of years, e.g. one new day for an incremental run).
`houston_scale_for(n_incidents, years)` gives the `scale` that yields about that many incidents
(the bench uses 10 M incidents over 20 years, 60 areas, 32 categories).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import holidays
import numpy as np
import pandas as pd

DEFAULT_SEED = 20240611
NB_DISPERSION = 4.0  # negative binomial size k: var = mu + mu^2 / k

# ----------------------------------------------------------------------------------------------
# calendar helpers


def us_federal_holidays(years: range) -> set[date]:
    """US federal holidays of `years` (actual dates, not observed shifts), from `holidays`."""
    return set(holidays.country_holidays("US", years=years, observed=False))


WEEKLY = {  # Monday … Sunday multipliers (normalised to mean 1 below)
    "property": [1.03, 1.02, 1.02, 1.03, 1.08, 0.97, 0.85],
    "violent": [0.92, 0.90, 0.92, 0.95, 1.05, 1.17, 1.09],
    "business": [1.10, 1.08, 1.06, 1.05, 1.05, 0.85, 0.80],
}


@dataclass(frozen=True)
class Category:
    name: str
    share: float  # share of all incidents
    profile: str  # key of WEEKLY
    yearly_amp: float  # amplitude of the yearly cycle (peak in late July)
    holiday: float  # multiplier on federal holidays
    trend: float  # log-rate change per year
    codes: tuple[tuple[str, str, float], ...] = ()  # (code, description, weight)
    ucr: str = ""


def _expected(
    days: pd.DatetimeIndex,
    area_shares: np.ndarray,
    cats: list[Category],
    per_day: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Mean counts, shape (days, areas, categories)."""
    dow = days.dayofweek.to_numpy()
    doy = days.dayofyear.to_numpy()
    t_years = (days - days[0]).days.to_numpy() / 365.25
    hol = np.isin(days.date, list(us_federal_holidays(range(days[0].year, days[-1].year + 1))))
    # each category concentrates a little differently across areas
    tilt = rng.lognormal(0.0, 0.25, size=(len(area_shares), len(cats)))
    area_cat = area_shares[:, None] * tilt
    area_cat /= area_cat.sum(axis=0, keepdims=True)
    shares = np.array([c.share for c in cats])
    shares /= shares.sum()
    out = np.empty((len(days), len(area_shares), len(cats)))
    for j, c in enumerate(cats):
        weekly = np.array(WEEKLY[c.profile])
        weekly /= weekly.mean()
        daily = (
            per_day
            * shares[j]
            * weekly[dow]
            * (1 + c.yearly_amp * np.cos(2 * np.pi * (doy - 205) / 365.25))
            * np.where(hol, c.holiday, 1.0)
            * np.exp(c.trend * t_years)
        )
        out[:, :, j] = daily[:, None] * area_cat[None, :, j]
    return out


def _nb(rng: np.random.Generator, mu: np.ndarray) -> np.ndarray:
    k = NB_DISPERSION
    return rng.negative_binomial(k, k / (k + mu))


def _period(start: date, years: float) -> pd.DatetimeIndex:
    end = pd.Timestamp(start) + pd.DateOffset(months=round(12 * years)) - pd.Timedelta(days=1)
    return pd.date_range(start, end, freq="D")


def _ts_text(values: np.ndarray) -> np.ndarray:
    """datetime64 → 'YYYY-MM-DD HH:MM:SS'."""
    return np.char.replace(np.datetime_as_string(values, unit="s"), "T", " ")


def _fmt(values: np.ndarray, decimals: int) -> np.ndarray:
    return np.char.mod(f"%.{decimals}f", values)


def _write(df: pd.DataFrame, path: Path, encoding: str, header: bool) -> None:
    df.to_csv(
        path,
        mode="w" if header else "a",
        header=header,
        index=False,
        encoding=encoding,
        lineterminator="\n",
        quoting=csv.QUOTE_MINIMAL,
    )


def _pick(rng: np.random.Generator, n: int, weights: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return rng.choice(len(w), size=n, p=w / w.sum())


# ----------------------------------------------------------------------------------------------
# Boston

BOSTON_DISTRICTS: tuple[tuple[str, float, float, float], ...] = (
    # code, share, latitude, longitude (approximate district centres)
    ("B2", 0.160, 42.3190, -71.0840),
    ("C11", 0.130, 42.2980, -71.0600),
    ("D4", 0.130, 42.3420, -71.0770),
    ("A1", 0.110, 42.3570, -71.0590),
    ("B3", 0.110, 42.2840, -71.0910),
    ("C6", 0.070, 42.3330, -71.0490),
    ("D14", 0.060, 42.3530, -71.1370),
    ("E13", 0.055, 42.3100, -71.1050),
    ("E18", 0.050, 42.2570, -71.1240),
    ("A7", 0.045, 42.3710, -71.0340),
    ("E5", 0.040, 42.2860, -71.1480),
    ("A15", 0.020, 42.3790, -71.0610),
)

#: Offense groups (legacy OFFENSE_CODE_GROUP names) with the real Boston offense codes used
#: for them; sources/boston_sample_codes.md lists the same code → group pairs for the seed.
BOSTON_CATEGORIES: tuple[Category, ...] = (
    Category(
        "Larceny",
        0.22,
        "business",
        0.10,
        0.80,
        -0.02,
        (
            ("619", "LARCENY ALL OTHERS", 0.45),
            ("613", "LARCENY SHOPLIFTING", 0.35),
            ("617", "LARCENY THEFT FROM BUILDING", 0.20),
        ),
        "Part One",
    ),
    Category(
        "Larceny From Motor Vehicle",
        0.10,
        "property",
        0.15,
        0.85,
        -0.04,
        (("614", "LARCENY THEFT FROM MV - NON-ACCESSORY", 1.0),),
        "Part One",
    ),
    Category(
        "Simple Assault",
        0.14,
        "violent",
        0.18,
        1.10,
        -0.01,
        (("801", "ASSAULT - SIMPLE", 0.6), ("802", "ASSAULT SIMPLE - BATTERY", 0.4)),
        "Part Two",
    ),
    Category(
        "Vandalism", 0.13, "property", 0.12, 1.05, -0.03, (("1402", "VANDALISM", 1.0),), "Part Two"
    ),
    Category(
        "Drug Violation",
        0.09,
        "business",
        0.05,
        0.70,
        -0.10,
        (
            ("1849", "DRUGS - POSS CLASS B - COCAINE, ETC.", 0.6),
            ("1810", "DRUGS - SALE / MANUFACTURING", 0.4),
        ),
        "Part Two",
    ),
    Category(
        "Residential Burglary",
        0.06,
        "property",
        0.10,
        0.90,
        -0.06,
        (
            ("520", "BURGLARY - RESIDENTIAL - FORCE", 0.6),
            ("522", "BURGLARY - RESIDENTIAL - NO FORCE", 0.4),
        ),
        "Part One",
    ),
    Category(
        "Robbery",
        0.04,
        "violent",
        0.12,
        1.00,
        -0.04,
        (("301", "ROBBERY - STREET", 1.0),),
        "Part One",
    ),
    Category(
        "Auto Theft", 0.05, "property", 0.08, 1.00, 0.02, (("724", "AUTO THEFT", 1.0),), "Part One"
    ),
    Category(
        "Aggravated Assault",
        0.07,
        "violent",
        0.20,
        1.20,
        0.00,
        (("413", "ASSAULT - AGGRAVATED - BATTERY", 0.5), ("423", "ASSAULT - AGGRAVATED", 0.5)),
        "Part One",
    ),
    Category(
        "Fraud",
        0.10,
        "business",
        0.04,
        0.60,
        0.04,
        (
            ("1102", "FRAUD - FALSE PRETENSE / SCHEME", 0.6),
            ("1106", "FRAUD - CREDIT CARD / ATM FRAUD", 0.4),
        ),
        "Part Two",
    ),
)

BOSTON_STREETS = (
    "WASHINGTON ST",
    "BLUE HILL AVE",
    "BOYLSTON ST",
    "DORCHESTER AVE",
    "TREMONT ST",
    "MASSACHUSETTS AVE",
    "COLUMBIA RD",
    "CENTRE ST",
    "HARRISON AVE",
    "COMMONWEALTH AVE",
    "HUNTINGTON AVE",
    "GENEVA AVE",
    "HYDE PARK AVE",
    "RIVER ST",
    "CAMBRIDGE ST",
    "BEACON ST",
    "NEWBURY ST",
    "HANCOCK ST",
    "BOWDOIN ST",
    "WARREN ST",
    "MORTON ST",
    "NORFOLK ST",
    "MERIDIAN ST",
    "BENNINGTON ST",
    "BROADWAY",
    "W BROADWAY",
    "SUMMER ST",
    "ATLANTIC AVE",
    "STATE ST",
    "LINCOLN ST",
    "SHAWMUT AVE",
    "GIBSON ST",
    "SCHOOL ST",
    "SOUTH ST",
    "PLAZA BETANCES",
    "PLAZA MUÑOZ MARÍN",
    "CAFÉ ST",
)
#: Hour-of-day weights (Boston records pile up at 00:00 when the time is unknown).
HOURLY = np.array(
    [
        3.0,
        1.6,
        1.4,
        1.0,
        0.7,
        0.6,
        0.8,
        1.3,
        2.2,
        2.6,
        2.8,
        3.0,
        3.6,
        3.2,
        3.3,
        3.5,
        3.8,
        3.9,
        3.8,
        3.4,
        3.1,
        2.8,
        2.4,
        1.9,
    ]
)
BOSTON_LEGACY_COLUMNS = (
    "",
    "INCIDENT_NUMBER",
    "OFFENSE_CODE",
    "OFFENSE_CODE_GROUP",
    "OFFENSE_DESCRIPTION",
    "DISTRICT",
    "REPORTING_AREA",
    "SHOOTING",
    "OCCURRED_ON_DATE",
    "YEAR",
    "MONTH",
    "DAY_OF_WEEK",
    "HOUR",
    "UCR_PART",
    "STREET",
    "Lat",
    "Long",
    "Location",
    "date",
)
BOSTON_CURRENT_COLUMNS = BOSTON_LEGACY_COLUMNS[1:-1]
_DAY_NAMES = np.array(
    ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
)


def _boston_rows(
    rng: np.random.Generator, counts: np.ndarray, days: pd.DatetimeIndex
) -> pd.DataFrame:
    """Expand counts (days, districts, categories) into one row per incident (time-sorted)."""
    flat = counts.reshape(-1)
    cell = np.repeat(np.arange(flat.size), flat)
    n_d, n_c = counts.shape[1], counts.shape[2]
    day_i, rest = np.divmod(cell, n_d * n_c)
    dist_i, cat_i = np.divmod(rest, n_c)
    n = cell.size
    hour = _pick(rng, n, HOURLY)
    minute = np.where(rng.random(n) < 0.35, 0, rng.integers(0, 60, n))
    ts = (
        days.to_numpy()[day_i] + hour.astype("timedelta64[h]") + minute.astype("timedelta64[m]")
    ).astype("datetime64[s]")
    order = np.argsort(ts, kind="stable")
    ts, dist_i, cat_i, hour = ts[order], dist_i[order], cat_i[order], hour[order]

    code = np.empty(n, dtype=object)
    desc = np.empty(n, dtype=object)
    for j, c in enumerate(BOSTON_CATEGORIES):
        m = cat_i == j
        k = _pick(rng, int(m.sum()), np.array([w for _, _, w in c.codes]))
        code[m] = np.array([x[0] for x in c.codes], dtype=object)[k]
        desc[m] = np.array([x[1] for x in c.codes], dtype=object)[k]
    lat0 = np.array([d[2] for d in BOSTON_DISTRICTS])[dist_i]
    lon0 = np.array([d[3] for d in BOSTON_DISTRICTS])[dist_i]
    lat = lat0 + rng.normal(0, 0.008, n)
    lon = lon0 + rng.normal(0, 0.010, n)
    district = np.array([d[0] for d in BOSTON_DISTRICTS], dtype=object)[dist_i]
    district[rng.random(n) < 0.004] = ""  # a few records without a district
    shooting = np.isin(cat_i, [6, 8]) & (rng.random(n) < 0.08)
    dts = pd.DatetimeIndex(ts)
    return pd.DataFrame(
        {
            "ts": ts,
            "code": code,
            "group": np.array([c.name for c in BOSTON_CATEGORIES], dtype=object)[cat_i],
            "desc": desc,
            "district": district,
            "reporting_area": rng.integers(1, 960, n).astype(str),
            "shooting": shooting,
            "year": dts.year.astype(str),
            "month": dts.month.astype(str),
            "dow": _DAY_NAMES[dts.dayofweek],
            "hour": hour.astype(str),
            "ucr": np.array([c.ucr for c in BOSTON_CATEGORIES], dtype=object)[cat_i],
            "street": np.array(BOSTON_STREETS, dtype=object)[
                rng.integers(0, len(BOSTON_STREETS), n)
            ],
            "lat": _fmt(lat, 8),
            "lon": _fmt(lon, 8),
        }
    )


def _with_duplicates(rng: np.random.Generator, df: pd.DataFrame, rate: float) -> pd.DataFrame:
    """Repeat a few rows verbatim right after themselves (exact duplicates)."""
    reps = np.where(rng.random(len(df)) < rate, 2, 1)
    return df.loc[df.index.repeat(reps)].reset_index(drop=True)


def write_boston(
    out_dir: Path, *, scale: float = 1.0, years: float = 3.5, seed: int = DEFAULT_SEED
) -> list[Path]:
    """Two files: the first part of the period in the legacy schema (UTF-8, unnamed leading
    index column, trailing `date` column, OFFENSE_CODE_GROUP filled, newest first), the rest in
    the current schema (latin-1, OFFENSE_CODE_GROUP / UCR_PART empty, `+00` timestamps that are
    local wall-clock time, SHOOTING 0/1, three PLTEST test records first)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = date(2021, 1, 1)
    days = _period(start, years)
    split_year = start.year + max(1, int(years * 4 / 7))
    split = pd.Timestamp(split_year, 1, 1)
    if split > days[-1]:
        split = days[len(days) // 2]
    rng = np.random.default_rng([seed, 0])
    shares = np.array([d[1] for d in BOSTON_DISTRICTS])
    counts = _nb(rng, _expected(days, shares, list(BOSTON_CATEGORIES), 160.0 * scale, rng))

    legacy_days, current_days = days[days < split], days[days >= split]
    legacy = out_dir / f"boston_legacy_{legacy_days[0].year}_{legacy_days[-1].year}.csv"
    current = out_dir / f"boston_current_{current_days[0].year}_{current_days[-1].year}.csv"

    # legacy: newest first, like the published extract; written one year at a time
    index = 0
    legacy_years = sorted(set(legacy_days.year), reverse=True)
    for k, year in enumerate(legacy_years):
        sel = np.flatnonzero((days < split) & (days.year == year))
        r = np.random.default_rng([seed, 1, year])
        df = _boston_rows(r, counts[sel], days[sel])
        seq = np.arange(len(df))
        df["id"] = [f"I{year % 100:02d}{2000000 + s:07d}" for s in seq]
        df = df.iloc[::-1].reset_index(drop=True)
        df = _with_duplicates(r, df, 0.0005)
        ts = _ts_text(df["ts"].to_numpy())
        out = pd.DataFrame(
            {
                "": np.arange(index, index + len(df)).astype(str),
                "INCIDENT_NUMBER": df["id"],
                "OFFENSE_CODE": df["code"],
                "OFFENSE_CODE_GROUP": df["group"],
                "OFFENSE_DESCRIPTION": df["desc"],
                "DISTRICT": df["district"],
                "REPORTING_AREA": df["reporting_area"],
                "SHOOTING": np.where(df["shooting"], "Y", ""),
                "OCCURRED_ON_DATE": ts,
                "YEAR": df["year"],
                "MONTH": df["month"],
                "DAY_OF_WEEK": df["dow"],
                "HOUR": df["hour"],
                "UCR_PART": df["ucr"],
                "STREET": df["street"],
                "Lat": df["lat"],
                "Long": df["lon"],
                "Location": "(" + df["lat"] + ", " + df["lon"] + ")",
                "date": np.array([t[:10] for t in ts], dtype=object),
            }
        )
        index += len(df)
        _write(out, legacy, "utf-8", header=k == 0)

    # current: oldest first, latin-1, PLTEST test records at the top
    test_rows = pd.DataFrame(
        {
            "INCIDENT_NUMBER": ["PLTEST001", "PLTEST002", "PLTEST003"],
            "OFFENSE_CODE": ["3114", "3114", "520"],
            "OFFENSE_CODE_GROUP": "",
            "OFFENSE_DESCRIPTION": [
                "INVESTIGATE PROPERTY",
                "INVESTIGATE PROPERTY",
                "BURGLARY - RESIDENTIAL - FORCE",
            ],
            "DISTRICT": "B2",
            "REPORTING_AREA": "282",
            "SHOOTING": "0",
            "OCCURRED_ON_DATE": f"{current_days[0].year}-05-12 00:00:00+00",
            "YEAR": str(current_days[0].year),
            "MONTH": "5",
            "DAY_OF_WEEK": "Friday",
            "HOUR": "0",
            "UCR_PART": "",
            "STREET": "SCHROEDER PLZ",
            "Lat": "42.33367922",
            "Long": "-71.09187755",
            "Location": "(42.33367922, -71.09187755)",
        }
    )
    _write(test_rows, current, "latin-1", header=True)
    for year in sorted(set(current_days.year)):
        sel = np.flatnonzero((days >= split) & (days.year == year))
        r = np.random.default_rng([seed, 2, year])
        df = _boston_rows(r, counts[sel], days[sel])
        df["id"] = [f"{year % 100:02d}{2000000 + s:07d}" for s in range(len(df))]
        df = _with_duplicates(r, df, 0.0005)
        ts = _ts_text(df["ts"].to_numpy())
        out = pd.DataFrame(
            {
                "INCIDENT_NUMBER": df["id"],
                "OFFENSE_CODE": df["code"],
                "OFFENSE_CODE_GROUP": "",
                "OFFENSE_DESCRIPTION": df["desc"],
                "DISTRICT": df["district"],
                "REPORTING_AREA": df["reporting_area"],
                "SHOOTING": np.where(df["shooting"], "1", "0"),
                "OCCURRED_ON_DATE": np.char.add(ts.astype(str), "+00"),
                "YEAR": df["year"],
                "MONTH": df["month"],
                "DAY_OF_WEEK": df["dow"],
                "HOUR": df["hour"],
                "UCR_PART": "",
                "STREET": df["street"],
                "Lat": df["lat"],
                "Long": df["lon"],
                "Location": "(" + df["lat"] + ", " + df["lon"] + ")",
            }
        )
        _write(out, current, "latin-1", header=False)
    return [legacy, current]


# ----------------------------------------------------------------------------------------------
# Houston

HOUSTON_DISTRICTS: tuple[tuple[str, float, int, float, float], ...] = (
    # beat prefix, share, beats, latitude, longitude
    ("1A", 0.070, 5, 29.7790, -95.3980),
    ("2A", 0.051, 6, 29.8090, -95.4050),
    ("3B", 0.046, 5, 29.8560, -95.4590),
    ("4F", 0.021, 4, 29.7700, -95.5640),
    ("5F", 0.052, 5, 29.8270, -95.5050),
    ("6B", 0.081, 6, 29.8930, -95.4000),
    ("7C", 0.043, 5, 29.8110, -95.3030),
    ("8C", 0.030, 4, 29.8650, -95.2930),
    ("9C", 0.028, 4, 29.7480, -95.2570),
    ("10H", 0.051, 8, 29.7430, -95.3650),
    ("11H", 0.029, 4, 29.7100, -95.2750),
    ("12D", 0.055, 5, 29.6190, -95.2290),
    ("13D", 0.036, 4, 29.6730, -95.3000),
    ("14D", 0.046, 5, 29.6550, -95.3690),
    ("15E", 0.041, 5, 29.6870, -95.4260),
    ("16E", 0.032, 4, 29.6320, -95.4720),
    ("17E", 0.052, 5, 29.6910, -95.5180),
    ("18F", 0.079, 6, 29.7420, -95.4800),
    ("19G", 0.063, 5, 29.7170, -95.5580),
    ("20G", 0.079, 6, 29.7430, -95.6150),
)
HOUSTON_CATEGORIES: tuple[Category, ...] = (
    Category("theft", 0.5394, "business", 0.08, 0.85, -0.02),
    Category("burglary", 0.2063, "property", 0.06, 0.90, -0.05),
    Category("auto theft", 0.0921, "property", 0.06, 1.00, 0.01),
    Category("aggravated assault", 0.0832, "violent", 0.18, 1.15, 0.01),
    Category("robbery", 0.0730, "violent", 0.10, 1.00, -0.03),
    Category("rape", 0.0044, "violent", 0.15, 1.00, 0.00),
    Category("murder", 0.0018, "violent", 0.20, 1.10, 0.00),
)
HOUSTON_PREMISES = (
    ("20A", "apartment", 11.0),
    ("20R", "residence / house", 11.0),
    ("18A", "apartment parking lot", 10.2),
    ("13R", "road / street / sidewalk", 6.4),
    ("20D", "driveway", 6.2),
    ("080", "department / discount store", 4.3),
    ("250", "other / unknown", 2.8),
    ("18R", "restaurant / cafeteria parking lot", 2.6),
    ("18P", "commercial parking lot / garage", 2.2),
    ("120", "grocery / supermarket", 1.8),
    ("18T", "strip business center parking lot", 1.6),
    ("18M", "hotel / motel parking lot", 1.6),
    ("070", "convenience store", 1.3),
    ("210", "restaurant / cafeteria", 1.3),
)
HOUSTON_STREETS = (
    "westheimer",
    "bellaire",
    "gessner",
    "richmond",
    "telephone",
    "bissonnet",
    "airline",
    "main",
    "fannin",
    "kirby",
    "fondren",
    "hillcroft",
    "beechnut",
    "wilcrest",
    "antoine",
    "tidwell",
    "aldine",
    "jensen",
    "cullen",
    "scott",
    "mykawa",
    "gulf",
    "kempwood",
    "long point",
    "little york",
    "north",
    "market",
    "edgebrook",
    "almeda",
    "marlive",
)
HOUSTON_TYPES = (
    ("", 20.0),
    ("dr", 20.0),
    ("st", 15.0),
    ("rd", 12.0),
    ("fwy", 6.0),
    ("blvd", 5.0),
    ("ln", 4.0),
    ("ave", 2.0),
)
HOUSTON_COLUMNS = (
    "time",
    "date",
    "hour",
    "premise",
    "offense",
    "beat",
    "block",
    "street",
    "type",
    "suffix",
    "number",
    "month",
    "day",
    "location",
    "address",
    "lon",
    "lat",
)
HOUSTON_TZ = "America/Chicago"
_MONTH_NAMES = np.array(
    [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ]
)


def _houston_rows(
    rng: np.random.Generator,
    counts: np.ndarray,
    days: pd.DatetimeIndex,
    districts: tuple[tuple[str, float, int, float, float], ...] = HOUSTON_DISTRICTS,
    cats: list[Category] | tuple[Category, ...] = HOUSTON_CATEGORIES,
) -> pd.DataFrame:
    flat = counts.reshape(-1)
    cell = np.repeat(np.arange(flat.size), flat)
    n_d, n_c = counts.shape[1], counts.shape[2]
    day_i, rest = np.divmod(cell, n_d * n_c)
    dist_i, cat_i = np.divmod(rest, n_c)
    n = cell.size
    hour = _pick(rng, n, HOURLY)
    naive = days.to_numpy()[day_i] + hour.astype("timedelta64[h]")
    local = pd.DatetimeIndex(naive).tz_localize(
        HOUSTON_TZ, ambiguous=np.ones(n, dtype=bool), nonexistent="shift_forward"
    )
    utc = local.tz_convert("UTC").tz_localize(None).to_numpy()
    order = np.argsort(utc, kind="stable")
    local, utc, dist_i, cat_i = local[order], utc[order], dist_i[order], cat_i[order]

    n_beats = np.array([d[2] for d in districts])[dist_i]
    beat_no = (rng.integers(0, 1 << 30, n) % n_beats + 1) * 10
    prefix = np.array([d[0] for d in districts], dtype=object)[dist_i]
    premise_i = _pick(rng, n, np.array([p[2] for p in HOUSTON_PREMISES]))
    street = np.array(HOUSTON_STREETS, dtype=object)[rng.integers(0, len(HOUSTON_STREETS), n)]
    type_i = _pick(rng, n, np.array([t[1] for t in HOUSTON_TYPES]))
    stype = np.array([t[0] for t in HOUSTON_TYPES], dtype=object)[type_i]
    block_lo = rng.integers(1, 130, n) * 100
    number = np.where(rng.random(n) < 0.008, 2, 1)
    number[rng.random(n) < 0.0015] = 3
    lat = np.array([d[3] for d in districts])[dist_i] + rng.normal(0, 0.012, n)
    lon = np.array([d[4] for d in districts])[dist_i] + rng.normal(0, 0.014, n)
    address = pd.Series(block_lo + 50).astype(str) + " " + street + " " + stype
    return pd.DataFrame(
        {
            "time": _ts_text(utc),
            "date": (
                pd.Series(local.month).astype(str)
                + "/"
                + pd.Series(local.day).astype(str)
                + "/"
                + pd.Series(local.year).astype(str)
            ),
            "hour": pd.Series(local.hour).astype(str),
            "premise": np.array([p[0] for p in HOUSTON_PREMISES], dtype=object)[premise_i],
            "offense": np.array([c.name for c in cats], dtype=object)[cat_i],
            "beat": prefix + pd.Series(beat_no).astype(str),
            "block": pd.Series(block_lo).astype(str) + "-" + pd.Series(block_lo + 99).astype(str),
            "street": street,
            "type": stype,
            "suffix": np.where(
                rng.random(n) < 0.9, "-", np.array(["N", "S", "E", "W"])[rng.integers(0, 4, n)]
            ),
            "number": number.astype(str),
            "month": _MONTH_NAMES[local.month - 1],
            "day": np.char.lower(_DAY_NAMES[local.dayofweek]),
            "location": np.array([p[1] for p in HOUSTON_PREMISES], dtype=object)[premise_i],
            "address": address.str.rstrip(),
            "lon": _fmt(lon, 7),
            "lat": _fmt(lat, 7),
        }
    )


#: Offence names added (in this order) when a Houston sample asks for more than 7 categories.
EXTRA_OFFENSES = (
    "simple assault",
    "vandalism",
    "shoplifting",
    "theft from motor vehicle",
    "fraud",
    "identity theft",
    "drug possession",
    "drug sale",
    "dui",
    "trespass",
    "weapons violation",
    "disorderly conduct",
    "public intoxication",
    "arson",
    "forgery",
    "embezzlement",
    "stolen property",
    "harassment",
    "stalking",
    "kidnapping",
    "prostitution",
    "gambling",
    "animal cruelty",
    "criminal mischief",
    "family offense",
    "liquor law violation",
    "bribery",
    "extortion",
    "counterfeiting",
    "curfew violation",
    "runaway",
    "burglary of motor vehicle",
    "credit card abuse",
    "intimidation",
    "pickpocketing",
    "purse snatching",
    "bicycle theft",
    "theft of service",
    "indecent exposure",
    "child abuse",
)
_PROFILES = ("property", "violent", "business")


def _houston_districts(n: int | None) -> tuple[tuple[str, float, int, float, float], ...]:
    """The 20 real districts, plus synthetic ones ("21A", "22B", …) up to `n`."""
    if n is None or n <= len(HOUSTON_DISTRICTS):
        return HOUSTON_DISTRICTS[: n or len(HOUSTON_DISTRICTS)]
    extra = []
    r = np.random.default_rng([DEFAULT_SEED, 90, n])
    for i in range(len(HOUSTON_DISTRICTS), n):
        extra.append(
            (
                f"{i + 1}{'ABCDEFGH'[i % 8]}",
                float(r.uniform(0.02, 0.08)),
                int(r.integers(4, 9)),
                float(29.76 + r.normal(0, 0.08)),
                float(-95.37 + r.normal(0, 0.10)),
            )
        )
    return HOUSTON_DISTRICTS + tuple(extra)


def _houston_categories(n: int | None) -> tuple[Category, ...]:
    """The 7 published offences, plus synthetic ones (EXTRA_OFFENSES, then "offense N")."""
    if n is None or n <= len(HOUSTON_CATEGORIES):
        return HOUSTON_CATEGORIES[: n or len(HOUSTON_CATEGORIES)]
    extra = []
    r = np.random.default_rng([DEFAULT_SEED, 91, n])
    for i in range(n - len(HOUSTON_CATEGORIES)):
        name = EXTRA_OFFENSES[i] if i < len(EXTRA_OFFENSES) else f"offense {i + 1}"
        extra.append(
            Category(
                name,
                float(r.uniform(0.005, 0.06)),
                _PROFILES[i % 3],
                float(r.uniform(0.02, 0.2)),
                float(r.uniform(0.7, 1.2)),
                float(r.uniform(-0.05, 0.03)),
            )
        )
    return HOUSTON_CATEGORIES + tuple(extra)


def houston_scale_for(
    n_incidents: float, years: float, areas: int | None = None, categories: int | None = None
) -> float:
    """`scale` giving about `n_incidents` Houston sample records over `years` (the daily mean
    at scale 1 is 150 records over the 7 published categories; extra categories add their
    share on top)."""
    cats = _houston_categories(categories)
    shares = np.array([c.share for c in cats])
    total_share = shares.sum() / sum(c.share for c in HOUSTON_CATEGORIES)
    # the mean of each category's trend exp(trend · t) over the period, share-weighted
    t = np.linspace(0.0, years, 1001)
    trend = np.array([np.exp(c.trend * t).mean() for c in cats])
    per_record = float((shares / shares.sum() * trend).sum())
    del areas  # areas split the same total
    return n_incidents / (150.0 * 365.25 * years * total_share * per_record)


def write_houston(
    out_dir: Path,
    *,
    scale: float = 1.0,
    years: float = 2.0,
    seed: int = DEFAULT_SEED,
    areas: int | None = None,
    categories: int | None = None,
    start: date | None = None,
    days: int | None = None,
) -> list[Path]:
    """One file per calendar year in Houston's 17-column schema (`time` UTC, `date` M/D/YYYY
    and `hour` local). A few records count 2 or 3 (`number`); a few are reversed later in the
    same file by an identical record with `number` = -1.

    `areas` / `categories`: more districts / offences than the real 20 / 7 (synthetic ones
    added); `start`: first day (default 2022-01-01); `days`: period length in days (instead of
    `years`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    first = start or date(2022, 1, 1)
    if days is not None:
        period = pd.date_range(first, periods=days, freq="D")
    else:
        period = _period(first, years)
    districts = _houston_districts(areas)
    cats = list(_houston_categories(categories))
    rng = np.random.default_rng([seed, 10])
    shares = np.array([d[1] for d in districts])
    total_share = sum(c.share for c in cats) / sum(c.share for c in HOUSTON_CATEGORIES)
    per_day = 150.0 * scale * total_share
    counts = _nb(rng, _expected(period, shares, cats, per_day, rng))
    paths = []
    for year in sorted(set(period.year)):
        sel = np.flatnonzero(period.year == year)
        r = np.random.default_rng([seed, 11, year])
        df = _houston_rows(r, counts[sel], period[sel], districts, cats)
        reversed_rows = df[(r.random(len(df)) < 0.003) & (df["number"] == "1")].copy()
        reversed_rows["number"] = "-1"
        df = pd.concat([df, reversed_rows], ignore_index=True)
        path = out_dir / f"houston_{year}.csv"
        _write(df[list(HOUSTON_COLUMNS)], path, "utf-8", header=True)
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------------------------
# dispatch

GENERATORS: dict[str, Callable[..., list[Path]]] = {
    "boston": write_boston,
    "houston": write_houston,
}


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def write_sample(
    source_name: str,
    out_dir: Path,
    *,
    scale: float = 1.0,
    years: float | None = None,
    seed: int = DEFAULT_SEED,
    reuse: bool = True,
    **extra: object,
) -> list[Path]:
    """Write the sample files of generator `source_name` (a mapping's `sample` key) into
    `out_dir` and return their paths. Deterministic: same arguments → same bytes.

    `extra` keyword arguments go to the generator (Houston: `areas`, `categories`, `start`,
    `days`; see `write_houston`); None values are ignored.

    A manifest (`.sample.json`) records the arguments, a hash of this module's code and each
    file's sha256; with `reuse`, files that still match it are returned without regenerating.
    Other `*.csv` files in `out_dir` (an earlier sample with other names) are removed, so the
    folder holds exactly this sample."""
    try:
        gen = GENERATORS[source_name]
    except KeyError:
        raise ValueError(
            f"unknown sample generator {source_name!r} (available: {', '.join(GENERATORS)})"
        ) from None
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    kwargs: dict[str, float | int] = {"scale": scale, "seed": seed}
    if years is not None:
        if years < 1:
            raise ValueError(f"years must be at least 1, got {years}")
        kwargs["years"] = years
    for name, value in extra.items():
        if value is not None:
            kwargs[name] = value  # type: ignore[assignment]
    out_dir = Path(out_dir)
    manifest_path = out_dir / ".sample.json"
    key = {
        "generator": source_name,
        "args": {k: (v.isoformat() if isinstance(v, date) else v) for k, v in kwargs.items()},
        "code_sha256": _file_sha(Path(__file__)),
    }
    if reuse and manifest_path.exists():
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            manifest = {}
        if manifest.get("key") == key:
            paths = [out_dir / name for name in manifest.get("files", {})]
            if paths and all(
                p.is_file() and _file_sha(p) == sha
                for p, sha in zip(paths, manifest["files"].values(), strict=True)
            ):
                _remove_others(out_dir, paths)
                return paths
    manifest_path.unlink(missing_ok=True)
    paths = gen(out_dir, **kwargs)
    _remove_others(out_dir, paths)
    manifest_path.write_text(
        json.dumps({"key": key, "files": {p.name: _file_sha(p) for p in paths}}, indent=1)
    )
    return paths


def _remove_others(out_dir: Path, paths: list[Path]) -> None:
    for stale in out_dir.glob("*.csv"):
        if stale not in paths:
            stale.unlink()
