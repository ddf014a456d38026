"""ml/placetype.py: calibration, reliability bins, metrics, feature selection, suppression."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss as sk_log_loss

from ml import placetype as pt
from orchestration.sample import saopaulo as sample


def sample_records(n: int = sample.N_RECORDS) -> pd.DataFrame:
    """The generated sample as the mart would give it (mapped subtypes, no unmapped rows)."""
    raw = pd.DataFrame(sample.generate(n), columns=sample.HEADER)
    back = {v: k for k, v in sample.RAW_SUBTYPES.items()}
    place = raw["DESCR_SUBTIPOLOCAL"].replace(back)
    keep = place.isin(pt.CLASSES)
    return pd.DataFrame(
        {
            "neighbourhood": raw["BAIRRO"].str.strip().str.upper(),
            "brand": raw["MARCA_OBJETO"],
            "weekday": raw["DIA_SEMANA"],
            "period": raw["PERIODO"],
            "offence": raw["RUBRICA"],
            "age": raw["IDADE"].astype(int),
            "sex": raw["SEXO"],
            "place_type": place,
        }
    )[keep].reset_index(drop=True)


@pytest.fixture(scope="module")
def result() -> pt.PlaceTypeResult:
    return pt.run(sample_records(), pt.PlaceTypeConfig())


def _miscalibrated(n: int, seed: int, sharpen: float):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, (n, 4))
    truth = pt.softmax(z)
    y = np.array([rng.choice(4, p=p) for p in truth])
    return z * sharpen, y


def test_temperature_scaling_repairs_overconfidence_on_unseen_rows():
    logits, y = _miscalibrated(6000, 0, sharpen=3.0)  # 3× too confident
    cal, held = slice(0, 3000), slice(3000, None)
    scaler = pt.TemperatureScaler().fit(logits[cal], y[cal])
    before = pt.log_loss(y[held], pt.softmax(logits[held]))
    after = pt.log_loss(y[held], scaler.transform(logits[held]))
    assert 2.5 < scaler.temperature < 3.5
    assert after < before - 0.05
    p = scaler.transform(logits[held])
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)


def test_temperature_scaling_keeps_a_calibrated_model():
    logits, y = _miscalibrated(6000, 1, sharpen=1.0)
    scaler = pt.TemperatureScaler().fit(logits[:3000], y[:3000])
    before = pt.log_loss(y[3000:], pt.softmax(logits[3000:]))
    after = pt.log_loss(y[3000:], scaler.transform(logits[3000:]))
    assert 0.85 < scaler.temperature < 1.15
    assert after <= before + 0.002


def test_metrics_match_definitions():
    rng = np.random.default_rng(2)
    p = pt.softmax(rng.normal(size=(500, pt.K)))
    y = rng.integers(0, pt.K, 500)
    assert pt.log_loss(y, p) == pytest.approx(sk_log_loss(y, p, labels=range(pt.K)))
    onehot = np.eye(pt.K)[y]
    assert pt.brier(y, p) == pytest.approx(np.mean(((p - onehot) ** 2).sum(axis=1)))
    assert pt.top_k(y, p, 1) == pytest.approx(np.mean(p.argmax(1) == y))
    assert pt.top_k(y, p, pt.K) == 1.0
    assert pt.top_k(y, p, 1) <= pt.top_k(y, p, 3)


def test_reliability_bins_are_well_formed():
    rng = np.random.default_rng(3)
    p = pt.softmax(rng.normal(0, 2, size=(2000, pt.K)))
    y = np.array([rng.choice(pt.K, p=row) for row in p])
    table = pt.reliability_table(y, p, "m", bins=10)
    assert set(table["class"]) == set(pt.CLASSES)
    assert table["bin"].between(0, 9).all()
    assert (table["mean_predicted"] >= table["bin_lower"] - 1e-12).all()
    assert (table["mean_predicted"] <= table["bin_upper"] + 1e-12).all()
    assert table["observed_frequency"].between(0, 1).all()
    assert (table["count"] > 0).all()
    assert (table.groupby("class")["count"].sum() == len(y)).all()
    assert not table.duplicated(["model", "class", "bin"]).any()
    # Calibrated by construction: count-weighted gap between predicted and observed is small.
    gap = np.average(
        (table["mean_predicted"] - table["observed_frequency"]).abs(), weights=table["count"]
    )
    assert gap < 0.03


def test_small_cells_are_suppressed():
    df = pd.DataFrame(
        {
            "neighbourhood": ["A"] * 5 + ["B"] * 4 + ["C"] * 9,
            "weekday": ["SEGUNDA"] * 18,
            "period": ["NOITE"] * 18,
            "brand": ["Apple"] * 5 + ["Apple"] * 4 + ["Apple"] * 4 + ["LG"] * 5,
        }
    )
    rng = np.random.default_rng(4)
    p = pt.softmax(rng.normal(size=(len(df), pt.K)))
    out = pt.cell_probabilities(df, p, min_records=5)
    cells = out.drop_duplicates(pt.CELL_KEYS)
    assert set(zip(cells["neighbourhood"], cells["brand"], strict=True)) == {
        ("A", "Apple"),
        ("C", "LG"),
    }
    assert (out["n_records"] >= 5).all()
    sums = out.groupby(pt.CELL_KEYS)["probability"].sum()
    np.testing.assert_allclose(sums, 1.0, atol=1e-12)
    a = out[out["neighbourhood"] == "A"].set_index("place_type")["probability"]
    np.testing.assert_allclose(a[pt.CLASSES].to_numpy(), p[:5].mean(axis=0), atol=1e-12)
    assert sorted(out.loc[out["neighbourhood"] == "A", "rank"]) == list(range(1, pt.K + 1))


def test_run_on_sample(result: pt.PlaceTypeResult):
    m = result.metrics.set_index("model")
    expected = {
        "prior",
        "freq_neighbourhood",
        "freq_neighbourhood_period",
        "freq_offence_neighbourhood_period",
        "xgboost_uncalibrated",
        "xgboost_no_offence",
        "xgboost",
    }
    assert set(m.index) == expected
    assert m.loc["prior", "log_loss_vs_prior"] == 0.0
    assert (m["top1"] <= m["top3"]).all()
    assert (m["n"] == m.loc["prior", "n"]).all()
    # The sample has real structure: the model beats the prior on held-out log loss.
    assert m.loc["xgboost", "log_loss"] < m.loc["prior", "log_loss"]
    # The random columns are candidates, measured, and not kept.
    ab = result.ablation.set_index("variant")
    assert {"without age", "without sex", "all candidates", "selected"} <= set(ab.index)
    assert "age" not in result.info["features"] and "sex" not in result.info["features"]
    assert not ab.loc["without age", "kept"] and not ab.loc["without sex", "kept"]
    # Calibration table: every model, bins well-formed, counts add up to the test rows.
    cal = result.calibration
    assert set(cal["model"]) == expected
    per = cal.groupby(["model", "class"])["count"].sum()
    assert (per == m.loc["prior", "n"]).all()
    # Scored cells: no cell with fewer than 5 records; probabilities sum to 1.
    probs = result.probabilities
    assert len(probs) > 0 and (probs["n_records"] >= 5).all()
    sums = probs.groupby(pt.CELL_KEYS)["probability"].sum()
    np.testing.assert_allclose(sums, 1.0, atol=1e-9)
    assert (probs.groupby(pt.CELL_KEYS).size() == pt.K).all()


def test_calibration_is_fitted_on_the_calibration_split_not_test():
    y = pt.encode_target(sample_records()["place_type"])
    s = pt.split_indices(y, pt.PlaceTypeConfig())
    assert set(s["cal"]).isdisjoint(s["test"])
    assert set(s["cal"]).isdisjoint(s["fit"]) and set(s["val"]).isdisjoint(s["fit"])
    assert len(s["test"]) == pytest.approx(0.25 * len(y), abs=2)
    assert sorted(np.concatenate([s["fit"], s["val"], s["cal"], s["test"]])) == list(range(len(y)))


def test_expected_calibration_error_detects_overconfidence():
    logits, y = _miscalibrated(6000, 5, sharpen=3.0)
    labels = [f"c{j}" for j in range(4)]
    sharp = pt.reliability_table(y, pt.softmax(logits), "sharp", classes=labels)
    honest = pt.reliability_table(y, pt.softmax(logits / 3.0), "honest", classes=labels)
    assert pt.expected_calibration_error(sharp) > 3 * pt.expected_calibration_error(honest)
