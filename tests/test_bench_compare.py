"""bench/compare.py on a small generated warehouse: every model on all test rows, on the
target days every horizon predicts and per 28-day test window, with bootstrap intervals; the NB
reference's φ from validation rows only; the README lines (bench/run_bench.py)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from bench import compare as cmp
from bench import run_bench

TEST_CUTOFF = pd.Timestamp("2021-03-01")
TEST_DAYS = 90  # three whole 28-day windows and a few days more
HORIZONS = (1, 7, 28)


def _predictions(test_scale: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    rows = []
    for split, cutoff, first, days in (
        ("cv", pd.Timestamp("2020-12-01"), pd.Timestamp("2020-12-01"), 60),
        ("test", TEST_CUTOFF, TEST_CUTOFF, TEST_DAYS),
    ):
        for sid, level in (("town|a|x", 0.7), ("town|b|x", 3.0), ("town|c|y", 8.0)):
            ds = pd.date_range(first, periods=days)
            actual = rng.negative_binomial(3, 3 / (3 + level), days).astype(float)
            if split == "test":
                actual = actual * test_scale
            for h in HORIZONS:
                keep = ds >= cutoff + pd.Timedelta(days=h - 1)
                for model, mean in (
                    ("mean_28", level * (1 + rng.normal(0, 0.05, days))),
                    ("mean_7", level * (1 + rng.normal(0, 0.15, days))),
                    ("champion", level * (1 + rng.normal(0, 0.02, days))),
                ):
                    rows.append(
                        pd.DataFrame(
                            {
                                "run_id": "r1",
                                "source": "town",
                                "series_id": sid,
                                "date": ds[keep].date,
                                "horizon": h,
                                "model": model,
                                "split": split,
                                "cutoff": cutoff.date(),
                                "prediction": np.round(mean[keep]),
                                "prediction_mean": mean[keep],
                                "actual": actual[keep],
                            }
                        )
                    )
    return pd.concat(rows, ignore_index=True)


def _warehouse(path: Path, preds: pd.DataFrame) -> Path:
    con = duckdb.connect(str(path))
    con.execute("create schema ml; create schema marts")
    con.execute("create table ml.backtest_predictions as select * from preds")
    counts = preds[preds["model"] == "mean_28"].drop_duplicates(["series_id", "date"])
    counts = counts.assign(incident_count=counts["actual"])  # noqa: F841 (read by duckdb)
    con.execute(
        "create table marts.daily_counts as select source, series_id, date, incident_count "
        "from counts"
    )
    con.close()
    return path


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    path = _warehouse(tmp_path_factory.mktemp("cmp") / "w.duckdb", _predictions())
    return cmp.compare(path, "town", with_peers=False)


def test_main_common_and_window_rows_with_intervals(compared):
    rows, facts = compared
    main = [r for r in rows if "target_days" not in r and "window" not in r]
    assert {(r["model"], r["horizon"]) for r in main} >= {
        (m, h) for m in ("champion", "mean_28", "median_28", cmp.NB_REFERENCE) for h in HORIZONS
    }
    for r in rows:
        assert r["mae_lo"] <= r["mae"] <= r["mae_hi"]
        if r["model"] != facts["best_baseline"][str(r["horizon"])]:
            assert r["diff_lo"] <= r["diff_baseline"] <= r["diff_hi"]
    # the common target days: the same days (and rows) at every horizon
    common = [r for r in rows if r.get("target_days") == "common" and r["model"] == "champion"]
    assert len(common) == 3 and len({r["n"] for r in common}) == 1
    assert facts["common_target_days"][0] == str((TEST_CUTOFF + pd.Timedelta(days=27)).date())
    # three whole 28-day windows of target days
    assert len(facts["windows"]) == 3
    windows = {(r["window"], r["horizon"]) for r in rows if "window" in r}
    assert windows == {(w, h) for w in (1, 2, 3) for h in HORIZONS}
    nb = [r for r in main if r["model"] == cmp.NB_REFERENCE]
    assert all(r.get("reference") for r in nb)


def test_median_baselines_of_the_run_are_used_not_derived_again(tmp_path):
    """A run whose zoo has median_28 (since issue 14): its own rows are scored, once."""
    preds = _predictions()
    own = preds[preds["model"] == "mean_28"].assign(model="median_28")
    own["prediction"] = np.floor(own["prediction_mean"]) + 1.0  # unlike the derived median
    path = _warehouse(tmp_path / "m.duckdb", pd.concat([preds, own], ignore_index=True))
    rows, _ = cmp.compare(path, "town", with_peers=False)
    main = [r for r in rows if "target_days" not in r and "window" not in r]
    for h in HORIZONS:
        (got,) = [r for r in main if r["model"] == "median_28" and r["horizon"] == h]
        test = own[(own["split"] == "test") & (own["horizon"] == h)]
        assert got["n"] == len(test)
        assert got["mae"] == pytest.approx(
            (test["prediction"] - test["actual"]).abs().mean(), abs=1e-4
        )
    assert {r["model"] for r in main} >= {"median_7", "median_28"}  # median_7 still derived


def test_the_nb_reference_dispersion_comes_from_validation_rows(tmp_path, compared):
    _, facts = compared
    poisoned = _warehouse(tmp_path / "p.duckdb", _predictions(test_scale=5.0))
    _, facts_p = cmp.compare(poisoned, "town", with_peers=False)
    assert facts_p["nb_phi"] == facts["nb_phi"] and all(v > 0 for v in facts["nb_phi"].values())
    assert facts_p["best_baseline"] == facts["best_baseline"]


def test_readme_summary_names_references_and_subsets(compared):
    rows, facts = compared
    results = []
    for r in rows:  # what run_incident_set writes for the derived rows
        results.append({"dataset": "boston_larceny_2016_2018", "split": "test from x", **r})
    results[0]["comparison"] = facts
    text = run_bench.readme_summary(results)
    assert "model-based reference, not a floor" in text
    assert "On the target days every horizon predicts" in text and "test window 3" in text


def test_help_and_unknown_options_do_not_run_the_benchmark(capsys, monkeypatch):
    """`--help` prints the usage and a typo is an error, before any data is read (the old
    argv check ran the whole benchmark for either)."""
    monkeypatch.setattr(run_bench, "run_incident_set", _must_not_run)
    monkeypatch.setattr(run_bench, "main_france_only", _must_not_run)
    for argv, code in ((["--help"], 0), (["--franse"], 2)):
        with pytest.raises(SystemExit) as exit_info:
            run_bench.main(argv)
        assert exit_info.value.code == code
    assert "--france" in capsys.readouterr().out


def _must_not_run(*args, **kwargs):
    raise AssertionError("the benchmark ran")
