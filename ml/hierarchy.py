"""Coherent hierarchy: area × category → area total, category total, city (source) total.

Reconciliation is BOTTOM-UP on the expected counts: every aggregate is the exact sum of the
bottom series' expected counts (``forecast_mean``), so the levels add up by construction (the
point forecasts of the bottom level are Poisson medians, which are not additive: the sum of
medians of many sparse series is far below the median of their sum). Bottom-up was chosen over
MinT because the bottom models are already pooled across series (global models) and MinT's
covariance estimate would need more backtest days than a monthly cutoff gives for hundreds of
series.

Aggregate rows use ``*`` for the summed-out key: ``series_id`` = ``source|area|*`` (area total),
``source|*|category`` (category total), ``source|*|*`` (city total); ``level`` is
``area_category``, ``area``, ``category`` or ``city``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ml.features import split_series_id

LEVELS = ("area_category", "area", "category", "city")
ALL = "*"


def aggregate(
    bottom: pd.DataFrame,
    keys: Sequence[str],
    sum_cols: Sequence[str],
    first_cols: Sequence[str] = (),
) -> pd.DataFrame:
    """Bottom rows plus every aggregate level.

    ``bottom`` has ``series_id`` (``source|area|category``) and the row keys ``keys`` (e.g.
    ``ds, horizon`` or ``date, horizon, cutoff``); ``sum_cols`` are summed (NaN-propagating:
    an aggregate is NaN when any of its bottom rows is), ``first_cols`` copied (constant within
    a group, e.g. ``run_id``). Returns ``level, source, area, category, series_id`` + keys +
    columns, bottom rows first.
    """
    parts = split_series_id(bottom["series_id"])
    base = bottom.copy()
    for col in ("source", "area", "category"):
        base[col] = parts[col].to_numpy()
    base["level"] = "area_category"
    out = [base]
    group_defs = {
        "area": ["source", "area"],
        "category": ["source", "category"],
        "city": ["source"],
    }
    for level, by in group_defs.items():
        grouped = base.groupby(by + list(keys), sort=True, dropna=False)
        g = grouped[list(sum_cols)].sum()
        complete = grouped[list(sum_cols)].count().eq(grouped.size(), axis=0)
        g = g.where(complete)
        if first_cols:
            g = g.join(grouped[list(first_cols)].first())
        g = g.reset_index()
        for col in ("area", "category"):
            if col not in by:
                g[col] = ALL
        g["series_id"] = g["source"] + "|" + g["area"] + "|" + g["category"]
        g["level"] = level
        out.append(g)
    cols = ["level", "source", "area", "category", "series_id", *keys, *sum_cols, *first_cols]
    result = pd.concat([o[cols] for o in out], ignore_index=True)
    return result
