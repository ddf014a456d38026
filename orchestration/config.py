"""Paths and settings as the environment gives them (see docs/architecture.md).

Read when the Definitions are built (``orchestration.definitions.build_resources``) and by
``crimecast run`` before Dagster starts, never inside an asset: assets get the warehouse and
the run defaults from their resources and the rest from their run config. :func:`settings`
gives the paths and the sources; :func:`ml_settings` the run settings of the forecasting step
(cutoffs, horizon, profile, training window), the defaults of the ML asset's ``MLConfig``. The
bounds of those settings are the modelling rules of ``ml/`` (``ml.history``, ``ml.zoo``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from ml.project import dbt_project_var

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCES_DIR = REPO_ROOT / "sources"
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
SEEDS_DIR = DBT_PROJECT_DIR / "seeds"
DEFAULT_WAREHOUSE = REPO_ROOT / "warehouse" / "crimecast.duckdb"


def code_location_name() -> str:
    """The code location `make dev` serves: pyproject's ``[tool.dagster]``
    ``code_location_name`` (what ``dagster dev`` reads in this folder)."""
    import tomllib

    with (REPO_ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)["tool"]["dagster"]["code_location_name"]


#: k of the small-cell rule (docs/saopaulo.md): rows built from fewer than k records are not
#: published. Defined once, as the var of dbt_project.yml that the serving models read.
MIN_CELL_RECORDS: int = int(dbt_project_var("min_cell_records"))
#: Sources with their own loaders and assets (not sources/*.yml incident mappings), selected by
#: name in CRIMECAST_SOURCES like the mappings
DATASETS = ("france", "saopaulo")


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """A setting's path: relative paths are from the repo root."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (REPO_ROOT / p)


@dataclass(frozen=True)
class Settings:
    warehouse: Path
    #: the incident mappings named in CRIMECAST_SOURCES (None: unset, every sources/*.yml;
    #: [] when it names only France / São Paulo)
    sources: list[str] | None
    #: the DATASETS named in CRIMECAST_SOURCES (all of them when it is unset)
    datasets: tuple[str, ...] = DATASETS
    #: CRIMECAST_PUBLISHED ("": beside the warehouse, see :attr:`published`)
    published_path: str = ""

    @property
    def warehouse_dir(self) -> Path:
        return self.warehouse.parent

    @property
    def sample_dir(self) -> Path:
        return self.warehouse_dir / "sample"

    @property
    def artifacts_dir(self) -> Path:
        return artifacts_dir(self.warehouse)

    @property
    def download_dir(self) -> Path:
        return self.warehouse_dir / "downloads"

    @property
    def published(self) -> Path:
        """The read-only copy readers use (`CRIMECAST_PUBLISHED`, default
        `<warehouse dir>/published/<warehouse file name>`); replaced atomically after a run."""
        value = self.published_path.strip()
        return (
            resolve_path(value) if value else self.warehouse_dir / "published" / self.warehouse.name
        )

    def input_for(self, source: str) -> str | None:
        """`CRIMECAST_INPUT_<SOURCE>`: a file, folder, glob or URL; None → the mapping's default."""
        return env_inputs().get(source)


INPUT_PREFIX = "CRIMECAST_INPUT_"


def env_inputs(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every ``CRIMECAST_INPUT_<NAME>`` that is set, by source name in lower case
    (``houston``, ``france_regional``, ``saopaulo``)."""
    env = os.environ if environ is None else environ
    return {
        k[len(INPUT_PREFIX) :].lower(): v.strip()
        for k, v in env.items()
        if k.startswith(INPUT_PREFIX) and v.strip()
    }


def artifacts_dir(warehouse: str | os.PathLike[str]) -> Path:
    """Where the fitted models of the runs on ``warehouse`` are saved."""
    return Path(warehouse).parent / "artifacts"


def split_sources(names: Iterable[str] | None) -> tuple[list[str] | None, tuple[str, ...]]:
    """Names as given (CRIMECAST_SOURCES, a run config) → (incident mappings, DATASETS); no
    name at all selects everything: (None, DATASETS). Names are checked by
    ``orchestration.defs.incidents.raw.select_sources``."""
    given = [n.strip() for n in names or () if n.strip()]
    if not given:
        return None, DATASETS
    incidents = list(dict.fromkeys(n for n in given if n not in DATASETS))
    return incidents, tuple(d for d in DATASETS if d in given)


def settings() -> Settings:
    """Read the settings now (tests change the environment between calls)."""
    warehouse = resolve_path(os.environ.get("CRIMECAST_WAREHOUSE") or DEFAULT_WAREHOUSE)
    sources, datasets = split_sources(os.environ.get("CRIMECAST_SOURCES", "").split(","))
    return Settings(
        warehouse=warehouse,
        sources=sources,
        datasets=datasets,
        published_path=os.environ.get("CRIMECAST_PUBLISHED", ""),
    )


# --- the forecasting step's run settings -------------------------------------------------------


class SettingsError(ValueError):
    """A setting with a bad value; ``str()`` is one line: ``NAME=value: reason``."""

    def __init__(self, name: str, value: object, reason: str) -> None:
        super().__init__(f"{name}={value}: {reason}")
        self.name, self.value, self.reason = name, value, reason


@dataclass(frozen=True)
class MLSettings:
    """Run settings of the ML asset (``MLConfig`` of orchestration.defs.incidents.ml, as text)."""

    cutoff: date | None = None  # every source where it fits (others: their default)
    cutoffs: dict[str, date] = field(default_factory=dict)  # per source (must fit)
    horizon: int = 28
    profile: str = "lean"
    train_days: int | None = None  # None: the profile's default (ml.backtest.profile_plan)


def _date(name: str, value: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise SettingsError(name, value, f"{text!r} is not a date (YYYY-MM-DD)") from None


def split_cutoffs(text: str) -> tuple[str, dict[str, str]]:
    """``2018-06-01`` → (that, {}); ``boston=2018-06-01,houston=2010-07-06`` → ("", per
    source); both kinds may be mixed. Values are not checked here (:func:`check_ml`)."""
    every, per_source = "", {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        if sep:
            per_source[name.strip()] = value.strip()
        else:
            every = part
    return every, per_source


def check_ml(
    *,
    cutoff: str = "",
    cutoffs: Mapping[str, str] | None = None,
    horizon: object = 28,
    profile: str = "lean",
    train_days: object = None,
    names: Mapping[str, str] | None = None,
    sources: Iterable[str] | None = None,
) -> MLSettings:
    """Validate run settings given as text/numbers; raise :class:`SettingsError` naming the
    setting (``names`` maps a field to its name for the message, e.g. the environment
    variable). With ``sources``, a per-source cutoff must name one of them."""
    from ml.history import horizon_problem, train_days_problem
    from ml.zoo import PROFILES

    label = {
        "cutoff": "cutoff",
        "cutoffs": "cutoffs",
        "horizon": "horizon",
        "profile": "profile",
        "train_days": "train_days",
        **(names or {}),
    }
    cutoffs = dict(cutoffs or {})
    shown = ",".join([*([cutoff] if cutoff else []), *(f"{k}={v}" for k, v in cutoffs.items())])
    every = _date(label["cutoff"], shown or cutoff, cutoff) if cutoff.strip() else None
    known = sorted(sources) if sources is not None else None
    per_source = {}
    for name, text in cutoffs.items():
        if not name:
            raise SettingsError(label["cutoffs"], shown, f"'={text}' names no source")
        if known is not None and name not in known:
            raise SettingsError(
                label["cutoffs"],
                shown,
                f"unknown source {name!r} (available: {', '.join(known) or 'none'})",
            )
        per_source[name] = _date(label["cutoffs"], shown, text)
    problem = horizon_problem(horizon)
    if problem:
        raise SettingsError(label["horizon"], horizon, problem)
    if profile not in PROFILES:
        raise SettingsError(label["profile"], profile, f"choose one of {', '.join(PROFILES)}")
    problem = train_days_problem(train_days)
    if problem:
        raise SettingsError(label["train_days"], train_days, problem)
    return MLSettings(every, per_source, int(horizon), profile, train_days)  # type: ignore[arg-type]


ML_ENV = {
    "cutoff": "CRIMECAST_CUTOFF",
    "cutoffs": "CRIMECAST_CUTOFF",
    "horizon": "CRIMECAST_HORIZON",
    "profile": "CRIMECAST_ML_PROFILE",
    "train_days": "CRIMECAST_ML_TRAIN_DAYS",
}


def ml_env_values(environ: Mapping[str, str] | None = None) -> dict:
    """The ML run settings as written in the environment (defaults where unset): whole
    numbers are converted when they are digits, everything else is left as text for
    :func:`check_ml` to judge."""
    env = os.environ if environ is None else environ
    cutoff, cutoffs = split_cutoffs(env.get(ML_ENV["cutoff"], ""))

    def number(name: str, default: int | None) -> object:
        text = env.get(name, "").strip()
        if not text:
            return default
        return int(text) if text.isdigit() else text

    return {
        "cutoff": cutoff,
        "cutoffs": cutoffs,
        "horizon": number(ML_ENV["horizon"], 28),
        "profile": env.get(ML_ENV["profile"], "").strip() or "lean",
        "train_days": number(ML_ENV["train_days"], None),
    }


def ml_settings(
    environ: Mapping[str, str] | None = None, sources: Iterable[str] | None = None
) -> MLSettings:
    """The ML run settings of the environment, validated (:class:`SettingsError` names the
    variable)."""
    return check_ml(**ml_env_values(environ), names=ML_ENV, sources=sources)
