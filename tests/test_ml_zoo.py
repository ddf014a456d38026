"""The model zoo behind one interface, direct horizon features, the rolling-origin backtest."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from ml.backtest import BacktestPlan, rolling_backtest
from ml.ets import HoltWintersModel, filter_states, fit_series
from ml.features import FEATURE_COLUMNS, build_features, extend_future, horizon_features
from ml.models import load_model
from ml.zoo import PROFILES, make_model, model_factory

ZOO = [n for n in PROFILES["full"] if n != "lstm"]


def synthetic(n_series: int = 4, days: int = 240, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2023-01-02", periods=days)
    weekday = np.array([0.6, 0.8, 1.0, 1.0, 1.2, 1.8, 1.6])[dates.dayofweek]
    frames = [
        pd.DataFrame(
            {
                "series_id": f"src|a{i % 2}|c{i // 2}",
                "ds": dates,
                "y": rng.poisson((0.8 + 0.7 * i) * weekday),
            }
        )
        for i in range(n_series)
    ]
    return build_features(pd.concat(frames, ignore_index=True))


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic()


def test_horizon_features_are_what_is_known_at_the_origin(frame):
    one = horizon_features(frame, 1)
    pd.testing.assert_frame_equal(one[FEATURE_COLUMNS], frame[FEATURE_COLUMNS])
    seven = horizon_features(frame, 7).set_index(["series_id", "ds"])
    y = frame.set_index(["series_id", "ds"])["y"]
    sid, day = "src|a1|c0", pd.Timestamp("2023-03-15")
    row = seven.loc[(sid, day)]
    back = [y[(sid, day - pd.Timedelta(days=k))] for k in range(7, 14)]
    assert row["lag_1"] == y[(sid, day - pd.Timedelta(days=7))]  # the latest known day
    assert row["lag_7"] == y[(sid, day - pd.Timedelta(days=7))]
    assert row["lag_14"] == y[(sid, day - pd.Timedelta(days=14))]
    assert row["roll_mean_7"] == pytest.approx(np.mean(back))
    assert row["origin"] == day - pd.Timedelta(days=7) and row["horizon"] == 7
    assert row["day_of_week"] == day.dayofweek  # calendar of the target day


def test_the_next_day_of_an_extended_frame_gets_its_features_from_the_history(frame):
    """The operational h = 1 row (the day after the last) has no mart values: its lags and
    windows must come from the history, not stay empty."""
    fh = horizon_features(extend_future(frame, 3), 1)
    sid = "src|a0|c1"
    hist = frame[frame["series_id"] == sid].set_index("ds")["y"]
    nxt = fh[(fh["series_id"] == sid) & (fh["ds"] == hist.index.max() + pd.Timedelta(days=1))]
    (row,) = nxt.to_dict("records")
    assert row["lag_1"] == hist.iloc[-1] and row["lag_7"] == hist.iloc[-7]
    assert row["roll_mean_28"] == pytest.approx(hist.iloc[-28:].mean())
    assert row["roll_std_7"] == pytest.approx(hist.iloc[-7:].std(ddof=1))
    # the history rows keep their own (mart) values
    known = fh[fh["y"].notna()]
    pd.testing.assert_frame_equal(
        known[FEATURE_COLUMNS].reset_index(drop=True), frame[FEATURE_COLUMNS]
    )


@pytest.mark.parametrize("name", ZOO)
def test_every_model_has_the_interface_and_round_trips(name, frame, tmp_path):
    model = make_model(name, "lean")
    fh = horizon_features(frame, 7)
    train, test = fh[fh["ds"] < "2023-07-01"], fh[fh["ds"] >= "2023-07-01"]
    if hasattr(model, "observe"):
        model.observe(frame)
    model.fit(train, train["y"].to_numpy())
    point = model.predict(test)
    mean = model.predict_mean(test) if hasattr(model, "predict_mean") else point
    known = test["roll_mean_28"].notna().to_numpy()
    assert known.all()  # 180 days of history before the test window: every feature is known
    assert len(point) == len(test) and np.isfinite(point).all() and np.isfinite(mean).all()
    # each series' expected level is on the scale of its actual counts (rates 0.8 … 3.1 / day)
    level = test.assign(mean=mean).groupby("series_id")[["mean", "y"]].mean()
    assert len(level) == 4
    assert ((level["mean"] > 0.5 * level["y"]) & (level["mean"] < 2 * level["y"])).all(), level
    # and the point forecast is about as accurate as the 28-day mean or better
    y = test["y"].to_numpy()
    assert np.abs(point - y).mean() < 1.25 * np.abs(test["roll_mean_28"].to_numpy() - y).mean()
    assert isinstance(model.get_params(), dict)
    path = model.save(tmp_path / f"{name}.json")
    again = load_model(path)
    if hasattr(again, "observe"):
        again.observe(frame)
    np.testing.assert_allclose(again.predict(test), point, equal_nan=True)


def test_holt_winters_recursion_matches_statsmodels():
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    y = synthetic(1, 200)["y"].to_numpy(dtype=float)
    params = fit_series(y, "estimated")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ExponentialSmoothing(
            y, seasonal="add", seasonal_periods=7, initialization_method="estimated"
        ).fit()
    level, season = filter_states(y, params)
    seasons = list(params["seasons0"]) + list(season)
    fitted = np.r_[params["level0"], level[:-1]] + np.array(seasons[: len(y)])
    np.testing.assert_allclose(fitted, res.fittedvalues, atol=1e-8)
    # a one-step forecast at the origin = statsmodels' forecast from the same data
    model = HoltWintersModel(initialization="estimated", point="mean")
    hist = pd.DataFrame({"series_id": "s|a|c", "ds": pd.date_range("2024-01-01", periods=200)})
    hist["y"] = y
    model.observe(hist).fit(hist, y)
    nxt = pd.DataFrame(
        {"series_id": ["s|a|c"], "ds": [pd.Timestamp("2024-07-19")], "origin": [hist.ds.max()]}
    )
    assert model.predict_mean(nxt)[0] == pytest.approx(max(res.forecast(1)[0], 0.0), abs=1e-8)


class Spy:
    """Records the rows each fit saw."""

    name = "spy"
    fits: list[pd.DataFrame] = []

    def fit(self, X, y):
        Spy.fits.append(X[["ds", "horizon"]].copy())
        return self

    def predict(self, X):
        return X["lag_1"].to_numpy(dtype=float)


def test_rolling_backtest_refits_per_cutoff_and_horizon_without_leaks(frame):
    Spy.fits = []
    plan = BacktestPlan(horizons=(1, 7, 28), n_cutoffs=4, window=14)
    cutoff = pd.Timestamp("2023-08-01")
    preds, fitted = rolling_backtest(frame, lambda: {"spy": Spy()}, cutoff, plan)
    cvs = plan.cv_cutoffs(cutoff)
    assert len(cvs) == 4 and cvs == sorted(cvs)
    assert len(Spy.fits) == 5 * 3  # refit per cutoff and horizon
    for (cut, h), fit in zip(
        [(c, h) for c in [*cvs, cutoff] for h in plan.horizons], Spy.fits, strict=True
    ):
        assert fit["ds"].max() < cut and (fit["horizon"] == h).all()
    cv = preds[preds["split"] == "cv"]
    assert cv["ds"].max() < cutoff  # validation never touches the test window
    assert (preds["origin"] == preds["ds"] - pd.to_timedelta(preds["horizon"], unit="D")).all()
    assert (preds["origin"] >= preds["cutoff"] - pd.Timedelta(days=1)).all()
    assert set(preds.groupby("split")["cutoff"].nunique()) == {4, 1}
    assert set(fitted) == {("spy", h) for h in plan.horizons}


def test_backtest_predictions_do_not_change_when_the_future_changes(frame):
    cutoff = pd.Timestamp("2023-08-01")
    plan = BacktestPlan(horizons=(1, 7), n_cutoffs=4, window=7)
    names = ["mean_28", "xgboost", "holt_winters"]
    a, _ = rolling_backtest(frame, model_factory(names, "lean"), cutoff, plan)
    poisoned = frame.copy()
    poisoned.loc[poisoned["ds"] > "2023-08-03", "y"] = 50.0
    poisoned = build_features(poisoned[["series_id", "ds", "y"]])
    b, _ = rolling_backtest(poisoned, model_factory(names, "lean"), cutoff, plan)
    key = ["model", "series_id", "ds", "horizon", "split"]
    m = a.merge(b, on=key, suffixes=("_a", "_b"))
    early = m[m["origin_a"] <= "2023-08-03"]  # forecasts made before the poisoned days
    assert len(early) > 0
    np.testing.assert_allclose(early["prediction_mean_a"], early["prediction_mean_b"])


def test_history_before_the_plans_start_changes_nothing():
    """The ML asset reads the mart from ``plan.history_start`` on: the rows before it must not
    change a single prediction."""
    full = synthetic(n_series=3, days=800, seed=1)
    cutoff = full["ds"].max() - pd.Timedelta(days=29)
    plan = BacktestPlan(horizons=(1, 7), n_cutoffs=2, window=7, train_days=28)
    start = plan.history_start(cutoff)
    assert start == plan.cv_cutoffs(cutoff)[0] - pd.Timedelta(days=28 + 7 + 364 + 1)
    assert BacktestPlan().history_start(cutoff) is None  # no train_days: all history
    trimmed = full[full["ds"] >= start].reset_index(drop=True)
    assert len(trimmed) < len(full) / 1.5
    names = ["mean_28", "xgboost", "poisson_glm"]
    a, _ = rolling_backtest(full, model_factory(names, "lean"), cutoff, plan)
    b, _ = rolling_backtest(trimmed, model_factory(names, "lean"), cutoff, plan)
    key = ["model", "series_id", "ds", "horizon", "split"]
    m = a.merge(b, on=key, how="outer", suffixes=("_a", "_b"), indicator=True)
    assert (m["_merge"] == "both").all() and len(m) == len(a) > 0
    np.testing.assert_allclose(m["prediction_mean_a"], m["prediction_mean_b"])


@pytest.mark.parametrize("name", ["xgboost", "poisson_glm"])
def test_explanations_add_up_to_the_log_rate(name, frame):
    model = make_model(name, "lean")
    model.fit(frame, frame["y"].to_numpy())
    rows = frame.tail(50)
    contrib, base = model.explain(rows)
    assert list(contrib.columns) == list(model.features)
    np.testing.assert_allclose(
        contrib.sum(axis=1).to_numpy() + base, np.log(model.predict_mean(rows)), atol=1e-4
    )
    imp = model.importance()
    assert set(imp) == set(model.features) and sum(imp.values()) == pytest.approx(1.0)
