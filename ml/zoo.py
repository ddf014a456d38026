"""The model zoo: names → fresh model instances, and the lean / full run profiles."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence

from ml.ets import HoltWintersModel
from ml.models import (
    HistGBCountModel,
    Mean7,
    Mean28,
    Median7,
    Median28,
    PoissonGLMModel,
    RandomForestCountModel,
    SeasonalNaive7,
    XGBCountModel,
)

BASELINE_NAMES = ["seasonal_naive_7", "mean_7", "mean_28", "median_7", "median_28"]
#: the baselines whose point is a count (a Poisson median, or an observed count) like every
#: learned model's: the references a model's gain is reported against (``mean_*`` are not)
MEDIAN_BASELINES = ("median_7", "median_28", "seasonal_naive_7")
#: Learned models in the order they are listed; the ensemble averages those present.
LEARNED_NAMES = ["poisson_glm", "random_forest", "hist_gbm", "xgboost", "holt_winters", "lstm"]

_FACTORIES: dict[str, Callable[[], object]] = {
    "seasonal_naive_7": SeasonalNaive7,
    "mean_7": Mean7,
    "mean_28": Mean28,
    "median_7": Median7,
    "median_28": Median28,
    "poisson_glm": PoissonGLMModel,
    "random_forest": RandomForestCountModel,
    "hist_gbm": HistGBCountModel,
    "xgboost": XGBCountModel,
    "holt_winters": HoltWintersModel,
}

#: ``full``: every model (the LSTM when torch is importable) — the benchmark's profile.
#: ``lean``: the default run on the sample (90 s budget for the whole pipeline, 260 series):
#: the baselines and a shorter XGBoost; the rest of the zoo (and so the ensemble) is left to
#: the ``full`` profile of the benchmark.
PROFILES: dict[str, list[str]] = {
    "full": BASELINE_NAMES + LEARNED_NAMES,
    "lean": BASELINE_NAMES + ["xgboost"],
}
#: Parameter overrides per profile (same shrinkage × rounds, a third of the trees).
PROFILE_PARAMS: dict[str, dict[str, dict]] = {
    "full": {},
    "lean": {"xgboost": {"n_estimators": 100, "learning_rate": 0.09}},
}


def torch_available() -> bool:
    return importlib.util.find_spec("torch") is not None


def profile_models(profile: str) -> list[str]:
    """Model names of a profile (``lstm`` dropped when torch is not installed)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown ML profile {profile!r}; choose one of {sorted(PROFILES)}")
    return [n for n in PROFILES[profile] if n != "lstm" or torch_available()]


def make_model(name: str, profile: str = "full"):
    """A fresh, unfitted model ``name`` with the profile's parameters."""
    params = PROFILE_PARAMS.get(profile, {}).get(name, {})
    if name == "lstm":
        from ml.deep import LSTMCountModel

        return LSTMCountModel(**params)
    return _FACTORIES[name](**params)


def model_factory(names: Sequence[str], profile: str = "full") -> Callable[[], dict[str, object]]:
    """A callable returning fresh, unfitted instances of ``names`` (the backtest refits)."""
    names = list(names)

    def factory() -> dict[str, object]:
        return {n: make_model(n, profile) for n in names}

    return factory


def ensemble_members(names: Sequence[str]) -> list[str]:
    """Learned models among ``names`` (the ensemble needs at least two)."""
    members = [n for n in names if n in LEARNED_NAMES]
    return members if len(members) >= 2 else []
