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
