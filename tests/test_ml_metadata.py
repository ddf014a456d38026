"""Numeric per-source metadata of the ML assets (issue 15): one number per key, so that the
Plots tab of the Dagster UI charts accuracy, coverage and size across runs."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from orchestration.defs.incidents.ml import numeric_metadata


def test_one_number_per_source_metric_and_horizon():
    summary = {
        "champion_mae": {1: 0.9676, 7: 1.1},
        "mean_28_mae": {1: 1.02, 7: 1.2},
        "champion_coverage_80": {1: 0.79, 7: 0.81},
        "champion_coverage_95": {1: 0.94, 7: 0.95},
        "last_day": "2023-12-30",
    }
    forecasts = pd.DataFrame(
        {"source": ["boston"] * 3 + ["houston"], "series_id": ["a", "a", "b", "c"]}
    )
    meta = numeric_metadata("boston", summary, forecasts)
    assert meta["boston/champion_mae_h1"] == 0.9676
    assert meta["boston/mean_28_mae_h7"] == 1.2
    assert meta["boston/coverage_80_h1"] == 0.79
    assert meta["boston/coverage_95_h7"] == 0.95
    assert meta["boston/n_series"] == 2
    assert meta["boston/as_of"] == dg.MetadataValue.timestamp(
        pd.Timestamp("2023-12-30", tz="UTC").timestamp()
    )
    numbers = {k: v for k, v in meta.items() if k != "boston/as_of"}
    assert all(isinstance(v, (int, float)) for v in numbers.values())
