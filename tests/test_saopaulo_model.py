"""ml/saopaulo/: calibration, reliability bins, metrics, feature selection, suppression."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.base import clone
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.utils.estimator_checks import (
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from ml import saopaulo as pt
from ml.saopaulo import protocol
from orchestration.config import MIN_CELL_RECORDS
from samples import saopaulo as sample


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
def spied() -> SimpleNamespace:
    """One run on the sample with transparent spies: which rows each ``FittedXGB.margins`` call
    scored, what ``TemperatureScaler.fit`` received, the final refit (design, features, train
    rows, model) and the per-record probabilities handed to ``cell_probabilities``."""
    seen = SimpleNamespace(margins=[], scaler_fits=[], refits=[], cell_p=[])
    margins, scaler_fit = pt.FittedXGB.margins, pt.TemperatureScaler.fit
    refit, cells = pt.refit_xgb, pt.cell_probabilities

    def spy_margins(self, design, train, rows):
        out = margins(self, design, train, rows)
        seen.margins.append((np.array(rows, copy=True), out))
        return out

    def spy_scaler_fit(self, logits, y):
        seen.scaler_fits.append((logits, np.array(y, copy=True)))
        return scaler_fit(self, logits, y)

    def spy_refit(design, features, train, rounds, cfg):
        model = refit(design, features, train, rounds, cfg)
        seen.refits.append((design, list(features), np.array(train, copy=True), model))
        return model

    def spy_cells(df, p, min_records=5):
        seen.cell_p.append(np.array(p, copy=True))
        return cells(df, p, min_records)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pt.FittedXGB, "margins", spy_margins)
        mp.setattr(pt.TemperatureScaler, "fit", spy_scaler_fit)
        mp.setattr(protocol, "refit_xgb", spy_refit)
        mp.setattr(protocol, "cell_probabilities", spy_cells)
        seen.records = sample_records()
        seen.result = pt.run(seen.records, pt.PlaceTypeConfig(min_cell_records=MIN_CELL_RECORDS))
    return seen


@pytest.fixture(scope="module")
def result(spied: SimpleNamespace) -> pt.PlaceTypeResult:
    return spied.result


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
    # What was suppressed is counted: (B, Apple) with 4 records and (C, Apple) with 4.
    counts = pt.suppression_counts(df, min_records=5)
    assert counts == {
        "min_cell_records": 5,
        "cells_total": 4,
        "cells_published": 2,
        "cells_suppressed": 2,
        "records_total": 18,
        "records_published": 10,
        "records_suppressed": 8,
    }
    assert counts["cells_published"] == len(cells)
    assert counts["records_published"] == cells["n_records"].sum()


def _assert_suppression_adds_up(counts: dict, probabilities: pd.DataFrame, records: int) -> None:
    published = probabilities.drop_duplicates(pt.CELL_KEYS)
    assert counts["cells_published"] + counts["cells_suppressed"] == counts["cells_total"]
    assert counts["records_published"] + counts["records_suppressed"] == counts["records_total"]
    assert counts["records_total"] == records
    assert counts["cells_published"] == len(published)
    assert counts["records_published"] == published["n_records"].sum()
    assert counts["cells_suppressed"] > 0 and counts["records_suppressed"] > 0
    assert counts["records_suppressed"] < counts["min_cell_records"] * counts["cells_suppressed"]


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
    # Suppression is counted, and published + suppressed = every cell / record.
    _assert_suppression_adds_up(result.info["suppression"], probs, len(sample_records()))


def _te_frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A small deterministic design frame: 3 neighbourhoods plus "LONE" (one record, row 0)."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "neighbourhood": ["LONE"] + list(rng.choice(["A", "B", "C"], n - 1)),
            "period": rng.choice(["MANHA", "NOITE"], n),
            "weekday": rng.choice(["SEGUNDA", "SABADO"], n),
            "brand": rng.choice(["Apple", "LG"], n),
            "offence": rng.choice(["ROUBO", "FURTO"], n),
            "age": rng.integers(18, 70, n),
            "sex": rng.choice(["M", "F"], n),
        }
    )
    return df, rng.integers(0, 3, n)


def test_training_rows_published_encoding_does_not_use_their_own_label():
    df, y = _te_frame(60, 7)
    cfg = pt.PlaceTypeConfig(min_cell_records=MIN_CELL_RECORDS)
    train, others = np.arange(40), np.arange(40, 60)
    feats = pt.features_for(["neighbourhood", "offence", "period", "brand"])

    def design(labels: np.ndarray) -> pt.Design:
        return pt.Design(df, labels, 5.0, cfg)

    base = design(y).scoring_matrix(feats, train)
    # The training rows get exactly the out-of-fold matrix the model is fitted on; the other
    # rows the encodings from all training rows.
    np.testing.assert_array_equal(base[train], design(y).matrix(feats, train, None))
    np.testing.assert_array_equal(base[others], design(y).matrix(feats, train, others))
    # A training row's features do not change when its own label does.
    for i in (0, 13, 39):
        flipped = y.copy()
        flipped[i] = (y[i] + 1) % pt.K
        np.testing.assert_array_equal(design(flipped).scoring_matrix(feats, train)[i], base[i])
        # ... whereas in-sample encodings (all training rows, the old scoring) do count it.
        in_sample = design(flipped).matrix(feats, train, np.arange(60))[i]
        assert not np.array_equal(in_sample, design(y).matrix(feats, train, np.arange(60))[i])
    # The only record of its neighbourhood: no other record to encode it from.
    log_n = design(y).columns(feats).index("neighbourhood_log_n")
    assert base[0, log_n] == 0.0
    assert design(y).matrix(feats, train, np.arange(60))[0, log_n] == pytest.approx(np.log(2))


def test_published_probabilities_score_training_rows_as_fitted(spied: SimpleNamespace):
    design, features, train, model = spied.refits[0]  # the final model (refitted on fit + val)
    assert features == spied.result.info["model_features"]
    (p,) = spied.cell_p
    temperature = spied.result.info["temperature"]
    # Training rows: the out-of-fold matrix the booster was trained on, never in-sample.
    fitted = model.predict_margins(design.matrix(features, train, None))
    np.testing.assert_allclose(p[train], pt.softmax(fitted / temperature), atol=1e-12)
    in_sample = model.predict_margins(design.matrix(features, train, train))
    assert not np.allclose(p[train], pt.softmax(in_sample / temperature), atol=1e-6)
    # Every other row (cal and test): encodings from all training rows.
    others = np.setdiff1d(np.arange(len(p)), train)
    rest = model.predict_margins(design.matrix(features, train, others))
    np.testing.assert_allclose(p[others], pt.softmax(rest / temperature), atol=1e-12)


def test_calibration_is_fitted_on_the_calibration_split_not_test(spied: SimpleNamespace):
    y = pt.encode_target(spied.records["place_type"])
    s = pt.split_indices(y, pt.PlaceTypeConfig(min_cell_records=MIN_CELL_RECORDS))
    # Every temperature fit (xgboost, xgboost_no_offence) received the margins of exactly the
    # cal rows, with their labels: the spied margins call that returned those very logits.
    assert len(spied.scaler_fits) == 2
    for logits, labels in spied.scaler_fits:
        (rows,) = [rows for rows, out in spied.margins if out is logits]
        np.testing.assert_array_equal(rows, s["cal"])
        np.testing.assert_array_equal(labels, y[s["cal"]])
        assert len(logits) == len(s["cal"])
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


def test_estimator_clones_and_a_refitted_clone_predicts_the_same(spied: SimpleNamespace):
    design, features, train, model = spied.refits[0]
    est = model.model
    assert isinstance(est, pt.PlaceTypeXGB) and isinstance(est.estimator_, xgb.XGBClassifier)
    for check in (
        check_parameters_default_constructible,
        check_get_params_invariance,
        check_set_params,
        check_no_attributes_set_in_init,
    ):
        check("PlaceTypeXGB", pt.PlaceTypeXGB())
    twin = clone(est)
    assert twin.get_params() == est.get_params() and not hasattr(twin, "estimator_")
    x = design.matrix(features, train, None)
    twin.fit(x, design.y[train])
    assert twin.best_iteration_ == est.best_iteration_ == est.n_estimators - 1
    others = np.setdiff1d(np.arange(len(design.y)), train)
    rows = design.matrix(features, train, others)
    np.testing.assert_array_equal(twin.predict_proba(rows), est.predict_proba(rows))
    np.testing.assert_allclose(est.predict_proba(rows).sum(axis=1), 1.0, atol=1e-9)


def test_estimator_with_absent_classes_is_the_num_class_booster():
    """Classes the fit rows lack get zero-weight rows: the same K-class booster as xgb.train."""
    rng = np.random.default_rng(11)
    x, xv = rng.normal(size=(500, 4)), rng.normal(size=(200, 4))
    w = rng.normal(size=(4, pt.K))
    y = np.argmax(x @ w + rng.gumbel(size=(500, pt.K)), axis=1)
    y[np.isin(y, [3, 9])] = 0  # classes 3 and 9 absent from the fit rows
    yv = np.argmax(xv @ w + rng.gumbel(size=(200, pt.K)), axis=1)
    cfg = pt.PlaceTypeConfig(min_cell_records=MIN_CELL_RECORDS, max_rounds=200)
    est = protocol.estimator(cfg).fit(x, y, eval_set=(xv, yv))
    params = {
        "objective": "multi:softprob",
        "num_class": pt.K,
        "eval_metric": "mlogloss",
        "tree_method": "hist",
        "nthread": 1,
        "seed": cfg.seed,
        **cfg.xgb_params,
    }
    booster = xgb.train(
        params,
        xgb.DMatrix(x, label=y),
        num_boost_round=cfg.max_rounds,
        evals=[(xgb.DMatrix(xv, label=yv), "val")],
        early_stopping_rounds=cfg.early_stopping_rounds,
        verbose_eval=False,
    )
    assert est.best_iteration_ == booster.best_iteration > 0
    want = booster.predict(
        xgb.DMatrix(xv), output_margin=True, iteration_range=(0, booster.best_iteration + 1)
    )
    np.testing.assert_allclose(est.decision_function(xv), want, atol=1e-6)
    assert est.decision_function(xv).shape == (200, pt.K)
    with pytest.raises(ValueError, match="class codes outside"):
        protocol.estimator(cfg).fit(x, np.where(y == 0, pt.K, y))
