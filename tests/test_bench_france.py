"""bench/france.py's per-indicator errors: MAE and MAE relative to the indicator's level, for
the model chosen on validation and last_value, rendered as one table."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.france import indicator_table, per_indicator


def test_per_indicator_mae_and_relative_error():
    preds = pd.DataFrame(
        {
            "dataset": ["d"] * 4,
            "model": ["last_value"] * 4,
            "indicator": ["Homicides", "Homicides", "Vols", "Vols"],
            "actual": [1.0, 3.0, 1000.0, 1200.0],
            "prediction": [2.0, 2.0, 900.0, 1300.0],
        }
    )
    out = per_indicator(preds)[("d", "last_value")]
    assert out["Homicides"] == {"mae": 1.0, "level": 2.0, "rel_mae": 50.0}
    assert out["Vols"]["mae"] == 100.0
    assert out["Vols"]["rel_mae"] == pytest.approx(100 * 100 / 1100, abs=0.01)


def test_indicator_table_shows_last_value_and_the_chosen_model():
    rows = [
        {"dataset": "france_reg_h1", "model": "last_value", "selected": False,
         "per_indicator": {"Vols": {"mae": 10.0, "level": 100.0, "rel_mae": 10.0}}},
        {"dataset": "france_reg_h1", "model": "drift", "selected": True,
         "per_indicator": {"Vols": {"mae": 5.0, "level": 100.0, "rel_mae": 5.0}}},
        {"dataset": "france_reg_h1", "model": "holt", "selected": False},
    ]  # fmt: skip
    text = "\n".join(indicator_table(rows))
    assert "france_reg_h1: last value / drift" in text
    assert "| Vols | 10.00 (10.0 %) / 5.00 (5.0 %) |" in text
    assert indicator_table([{**r, "selected": False} for r in rows]) == []


def test_readme_france_block_reads_the_forecast_rows():
    from bench import run_bench

    pi = {"Vols": {"mae": 1.0, "level": 10.0, "rel_mae": 10.0}}
    rows = [
        {"dataset": "france_reg_h1", "split": "s", "model": "last_value", "mae": 2.0,
         "mape": 5.0, "selected": False, "validation_mae": 2.0, "per_indicator": pi},
        {"dataset": "france_reg_h1", "split": "s", "model": "ridge", "mae": 1.0, "mape": 4.0,
         "selected": True, "validation_mae": 3.0, "coverage_80": 0.8, "coverage_95": 0.95,
         "per_indicator": pi},
        {"dataset": "france_reg_forecast", "split": "from 2024 to 2030", "model": "holt",
         "max_hi95_ratio": 9.6, "median_hi95_ratio": 3.67, "max_series": "AFD"},
    ]  # fmt: skip
    text = run_bench.readme_summary(rows)
    flag = "3.00 / 2.00 (worse than last value on validation)"
    assert f"| ridge | 1.00 (4.0) | -50.0 % | {flag} | 0.80 / 0.95 |" in text
    assert "at most 9.6 times the last observed rate (median 3.67; widest: AFD)" in text
