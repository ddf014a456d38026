"""Python feature builder that reproduces ``marts.daily_features`` (docs/architecture.md).

The dbt mart is the source of truth for training and backtesting (its rows enter through
:func:`from_mart`). This module also builds the direct h-step feature rows
(:func:`horizon_features`: lags and rolling windows as known at the origin ``ds - h``) used by
the backtests and by the operational forecast (``ml.forecast.forecast_direct``, with
:func:`extend_future` adding the future days), and the one-step features
(:func:`build_features`, :func:`window_features`; also used by tests).
Its definitions follow the contract exactly:

* ``lag_k`` = ``y`` k days before the target day (NaN before the series starts);
* ``roll_mean_w`` / ``roll_std_w`` over the ``w`` days ENDING THE DAY BEFORE the target day,
  sample std (ddof=1), NaN until the window is full (``w`` earlier days exist);
* ``day_of_week`` 0=Monday … 6=Sunday, ``month`` 1…12,
  ``doy_sin``/``doy_cos`` = sin/cos(2π·day_of_year/365.25) with day_of_year 1-based;
* ``is_holiday`` 1 when the day is in the caller's holiday set (the source's country), else 0;
* ``area_code`` / ``category_code``: dense ranks (1-based, per source) of area / category.

The target day's own ``y`` never enters its features.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

import numpy as np
import pandas as pd

from ml.project import dbt_project_var

#: days back of the lag features and lengths of the rolling windows: the vars of dbt_project.yml
#: that marts.daily_features builds them from (one list for the SQL and the Python)
LAGS: tuple[int, ...] = tuple(int(k) for k in dbt_project_var("daily_feature_lags"))
ROLL_WINDOWS: tuple[int, ...] = tuple(int(w) for w in dbt_project_var("daily_feature_windows"))

LAG_COLUMNS = [f"lag_{k}" for k in LAGS]
ROLL_COLUMNS = [f"roll_{stat}_{w}" for w in ROLL_WINDOWS for stat in ("mean", "std")]
CALENDAR_COLUMNS = ["day_of_week", "month", "doy_sin", "doy_cos", "is_holiday"]
STATIC_COLUMNS = ["area_code", "category_code"]

#: The model features, in the order of the ``marts.daily_features`` contract.
FEATURE_COLUMNS: list[str] = LAG_COLUMNS + ROLL_COLUMNS + CALENDAR_COLUMNS + STATIC_COLUMNS

#: History (in days) that the features of one day need: the longest lag.
MAX_LOOKBACK = max(max(LAGS), max(ROLL_WINDOWS))


def split_series_id(series_id: pd.Series) -> pd.DataFrame:
    """Split ``source|area|category`` ids into ``source``, ``area``, ``category`` columns.

    The category is everything after the second ``|`` (it may itself contain ``|``).
    """
    codes, uniques = pd.factorize(series_id.astype(str))
    parts = pd.Series(uniques).str.split("|", n=2, expand=True)
    if len(uniques) and (parts.shape[1] != 3 or parts.isna().any().any()):
        raise ValueError("series_id must look like 'source|area|category'")
    if not len(uniques):
        return pd.DataFrame(columns=["source", "area", "category"], index=series_id.index)
    parts.columns = ["source", "area", "category"]
    out = parts.iloc[codes].reset_index(drop=True)
    out.index = series_id.index
    return out


def dense_rank_codes(values: pd.Series, groups: pd.Series | None = None) -> pd.Series:
    """1-based dense rank of ``values`` (ascending), within each group of ``groups``.

    Equivalent to SQL ``dense_rank() over (partition by groups order by values)``.
    """
    frame = pd.DataFrame({"v": values.to_numpy(), "g": "" if groups is None else groups.to_numpy()})
    codes = frame.groupby("g")["v"].rank(method="dense").astype("int64")
    return pd.Series(codes.to_numpy(), index=values.index)


def calendar_features(ds: pd.Series, holidays: Iterable[date] | None = None) -> pd.DataFrame:
    """Calendar columns for a series of dates (index preserved)."""
    d = pd.to_datetime(ds)
    doy = d.dt.dayofyear.to_numpy(dtype="float64")
    angle = 2.0 * np.pi * doy / 365.25
    holiday_set = {pd.Timestamp(h).normalize() for h in (holidays or ())}
    return pd.DataFrame(
        {
            "day_of_week": d.dt.dayofweek.astype("int64").to_numpy(),
            "month": d.dt.month.astype("int64").to_numpy(),
            "doy_sin": np.sin(angle),
            "doy_cos": np.cos(angle),
            "is_holiday": d.dt.normalize().isin(holiday_set).astype("int64").to_numpy(),
        },
        index=ds.index,
    )


def window_features(
    values: np.ndarray,
    ri: np.ndarray,
    ci: np.ndarray,
    chunk: int = 100_000,
    horizon: int = 1,
) -> dict[str, np.ndarray]:
    """Lag and rolling-window features of cells ``(ri[j], ci[j])`` of a day × series matrix.

    ``values[t, s]`` is series ``s`` on day ``t`` (consecutive days; NaN = unknown or outside
    the series). ``lag_k`` is ``values[t - k, s]``; ``roll_*_w`` are the mean and sample std
    (ddof=1) of ``values[t - w : t, s]`` (the ``w`` days before ``t``), NaN when any of them is
    NaN or before the first day. Each window is computed exactly (two-pass), like SQL
    ``avg``/``stddev_samp`` over ``rows between w preceding and 1 preceding``.

    ``horizon`` h > 1 gives the DIRECT h-step features: what is known at the forecast origin
    ``t - h``. ``lag_k`` is ``values[t - max(k, h), s]`` (a lag shorter than the horizon is
    replaced by the most recent known day) and the windows cover the ``w`` days ending at the
    origin, ``values[t - h - w + 1 : t - h + 1, s]``. ``horizon=1`` is the contract above.
    """
    if horizon < 1:
        raise ValueError("horizon must be >= 1")
    ri = np.asarray(ri, dtype="int64")
    ci = np.asarray(ci, dtype="int64")
    out = {name: np.full(len(ri), np.nan) for name in LAG_COLUMNS + ROLL_COLUMNS}
    for lo in range(0, len(ri), chunk):
        r, c = ri[lo : lo + chunk], ci[lo : lo + chunk]
        for k in LAGS:
            t = r - max(k, horizon)
            ok = t >= 0
            col = out[f"lag_{k}"]
            col[lo : lo + chunk][ok] = values[t[ok], c[ok]]
        for w in ROLL_WINDOWS:
            idx = r[:, None] - (horizon - 1) - np.arange(1, w + 1)[None, :]
            window = values[np.maximum(idx, 0), c[:, None]]
            window[idx < 0] = np.nan
            out[f"roll_mean_{w}"][lo : lo + chunk] = window.mean(axis=1)
            out[f"roll_std_{w}"][lo : lo + chunk] = window.std(axis=1, ddof=1)
    return out


def _check_gap_free(frame: pd.DataFrame) -> None:
    if frame.duplicated(["series_id", "ds"]).any():
        raise ValueError("duplicate (series_id, ds) rows")
    steps = frame.groupby("series_id")["ds"].diff().dropna()
    if len(steps) and not (steps == pd.Timedelta(days=1)).all():
        raise ValueError("each series must be a gap-free daily sequence (zero-fill first)")


def build_features(
    long_frame: pd.DataFrame,
    holidays: Iterable[date] | None = None,
    area_codes: Mapping[str, int] | None = None,
    category_codes: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """Compute the ``marts.daily_features`` columns from a gap-free long frame.

    Parameters
    ----------
    long_frame:
        Columns ``series_id`` (``source|area|category``), ``ds`` (date), ``y`` (count; may be NaN
        for days whose value is unknown: their own features are still computed, and windows that
        contain them are NaN). Optional ``area``/``category`` (else parsed from ``series_id``) and
        ``area_code``/``category_code`` (kept as given when present). Every series must be a
        gap-free daily sequence.
    holidays:
        Dates that count as holidays for this frame's country.
    area_codes, category_codes:
        Optional explicit mappings value → code (e.g. to reuse the mart's codes); otherwise dense
        ranks per source computed from this frame.

    Returns
    -------
    A new frame sorted by ``series_id, ds`` with the input columns plus :data:`FEATURE_COLUMNS`.
    """
    missing = {"series_id", "ds", "y"} - set(long_frame.columns)
    if missing:
        raise ValueError(f"long_frame lacks columns {sorted(missing)}")
    out = long_frame.copy()
    out["ds"] = pd.to_datetime(out["ds"]).dt.normalize()
    out["y"] = out["y"].astype("float64")
    out = out.sort_values(["series_id", "ds"], kind="stable").reset_index(drop=True)
    _check_gap_free(out)

    # Wide matrix: one column per series over the union of dates. Padding outside a series'
    # range is NaN, so lags reaching before its start are NaN and windows touching it are
    # incomplete (NaN), exactly as with per-series window functions.
    wide = out.pivot(index="ds", columns="series_id", values="y")
    wide = wide.reindex(pd.date_range(wide.index.min(), wide.index.max(), freq="D"))
    values = wide.to_numpy(dtype="float64")
    ri = wide.index.get_indexer(out["ds"])
    ci = wide.columns.get_indexer(out["series_id"])
    for name, column in window_features(values, ri, ci).items():
        out[name] = column

    cal = calendar_features(out["ds"], holidays)
    for name in CALENDAR_COLUMNS:
        out[name] = cal[name].to_numpy()

    parts = split_series_id(out["series_id"])
    for col in ("area", "category"):
        if col not in out.columns:
            out[col] = parts[col].to_numpy()
    for col, mapping, key in (
        ("area_code", area_codes, "area"),
        ("category_code", category_codes, "category"),
    ):
        if mapping is not None:
            out[col] = out[key].map(mapping)
            if out[col].isna().any():
                raise ValueError(f"{col} mapping lacks some values of {key}")
            out[col] = out[col].astype("int64")
        elif col not in out.columns:
            out[col] = dense_rank_codes(out[key], parts["source"])
    return out


#: Mart column → long-frame column.
MART_RENAMES = {"date": "ds", "incident_count": "y"}


def from_mart(mart: pd.DataFrame) -> pd.DataFrame:
    """Turn ``marts.daily_features`` rows into the long frame the models use.

    Renames ``date`` → ``ds`` and ``incident_count`` → ``y``, makes ``ds`` a timestamp, the
    numeric features float64 (NULL → NaN) and ``is_holiday`` 0/1; other columns are kept.
    """
    out = mart.rename(columns=MART_RENAMES).copy()
    out["ds"] = pd.to_datetime(out["ds"])
    out["y"] = pd.to_numeric(out["y"]).astype("float64")
    for col in LAG_COLUMNS + ROLL_COLUMNS + ["doy_sin", "doy_cos"]:
        out[col] = out[col].astype("float64")
    for col in ["day_of_week", "month", "is_holiday", *STATIC_COLUMNS]:
        out[col] = out[col].astype("int64")
    return out.sort_values(["series_id", "ds"], kind="stable").reset_index(drop=True)


def holidays_from_seed(seed: pd.DataFrame, country: str | None) -> set[date]:
    """Holiday dates of one country from the ``holidays`` seed (columns country, date)."""
    if not country:
        return set()
    rows = seed.loc[seed["country"].astype(str).str.strip().str.upper() == country.upper()]
    return set(pd.to_datetime(rows["date"]).dt.date)


def horizon_features(frame: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """The direct ``horizon``-step feature frame of a long frame that already has the features.

    ``frame`` is a gap-free long frame with ``y`` and the calendar/static columns (the mart,
    :func:`from_mart`, or :func:`build_features` output, possibly extended with future days
    whose ``y`` is NaN). The lag and rolling columns are recomputed from ``y`` as known at the
    origin ``ds - horizon`` (:func:`window_features`); the calendar and static columns are the
    target day's and stay as they are. Adds ``horizon`` and ``origin`` (``ds - horizon`` days)
    and ``noise_lambda`` (the target day's own one-step ``roll_mean_28``: the λ of the Poisson
    Poisson reference, identical for every horizon). For ``horizon=1`` the feature columns are the
    input's own (the mart's, when given the mart) where it has them, computed from ``y`` on the
    rows it has none for (the future days of :func:`extend_future`).
    """
    out = frame.sort_values(["series_id", "ds"], kind="stable").reset_index(drop=True)
    out["ds"] = pd.to_datetime(out["ds"])
    wide = out.pivot(index="ds", columns="series_id", values="y")
    wide = wide.reindex(pd.date_range(wide.index.min(), wide.index.max(), freq="D"))
    values = wide.to_numpy(dtype="float64")
    ri = wide.index.get_indexer(out["ds"])
    ci = wide.columns.get_indexer(out["series_id"])
    if "roll_mean_28" in out.columns and out["roll_mean_28"].notna().any():
        out["noise_lambda"] = out["roll_mean_28"].astype("float64")
    else:
        out["noise_lambda"] = window_features(values, ri, ci)["roll_mean_28"]
    keep_own = horizon == 1 and set(LAG_COLUMNS + ROLL_COLUMNS) <= set(out.columns)
    for name, column in window_features(values, ri, ci, horizon=horizon).items():
        # h = 1 keeps the input's own (the mart's) values; rows the input has no value for,
        # such as the future days of extend_future, get them computed from y
        out[name] = out[name].fillna(pd.Series(column, index=out.index)) if keep_own else column
    out["horizon"] = int(horizon)
    out["origin"] = out["ds"] - pd.Timedelta(days=horizon)
    return out


def extend_future(
    frame: pd.DataFrame, days: int, holidays: Iterable[date] | None = None
) -> pd.DataFrame:
    """Append ``days`` future days (``y`` NaN) after each series' last day, with calendar and
    static columns filled, so that :func:`horizon_features` can build forecast rows."""
    frame = frame.copy()
    frame["ds"] = pd.to_datetime(frame["ds"])
    last = frame.sort_values("ds").groupby("series_id", sort=True).tail(1).set_index("series_id")
    rows = []
    for step in range(1, days + 1):
        f = last.reset_index()[["series_id", "ds"] + [c for c in _STATIC_KEEP if c in last]]
        f["ds"] = f["ds"] + pd.Timedelta(days=step)
        rows.append(f)
    future = pd.concat(rows, ignore_index=True)
    future["y"] = np.nan
    cal = calendar_features(future["ds"], holidays)
    for name in CALENDAR_COLUMNS:
        future[name] = cal[name].to_numpy()
    future["is_future"] = True
    out = pd.concat([frame.assign(is_future=False), future], ignore_index=True)
    return out.sort_values(["series_id", "ds"], kind="stable").reset_index(drop=True)


_STATIC_KEEP = ["source", "area", "category", *STATIC_COLUMNS]
