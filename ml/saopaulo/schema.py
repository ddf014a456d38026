"""São Paulo place-type model: the classes, candidate columns, configuration, result and
warehouse I/O (``marts.saopaulo_phone_theft_records`` in, four ``ml.saopaulo_*`` tables out)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: The 10 place-type groups, as named in the derived SSP extract
#: (dbt_project/seeds/saopaulo_place_types.csv maps raw SSP subtypes onto them). The order is the
#: column order of every probability matrix.
CLASSES: list[str] = [
    "Via Publica",
    "Transporte Publico",
    "Residencia / Hospedagem",
    "Estabelecimentos Comerciais / Industrias",
    "Transporte Privado",
    "Alimentacao",
    "Entreterimento",
    "Saude",
    "Escolas / Universidade",
    "Escritorios",
]
K = len(CLASSES)

#: Candidate input columns. The ablation drops one COLUMN at a time (with every feature built
#: from it), so that redundant encodings of one column cannot hide each other. IDADE (age) and
#: SEXO (sex) are RANDOM in the derived extract: they are candidates so that the ablation shows it.
CANDIDATE_COLUMNS: list[str] = [
    "neighbourhood",
    "period",
    "weekday",
    "brand",
    "offence",
    "age",
    "sex",
]
#: Target-encoded features and the columns whose combination is the key.
TARGET_ENCODED: dict[str, list[str]] = {
    "neighbourhood": ["neighbourhood"],
    "neighbourhood_period": ["neighbourhood", "period"],
    "offence_neighbourhood": ["offence", "neighbourhood"],
    "offence_neighbourhood_period": ["offence", "neighbourhood", "period"],
}
#: Columns entering the model as integer codes (XGBoost splits on them like ordinals).
CATEGORICAL = ["period", "weekday", "brand", "offence", "sex"]
#: Key columns of the scored table; cells built from fewer than `min_cell_records` are dropped.
CELL_KEYS = ["neighbourhood", "weekday", "period", "brand"]
EPS = 1e-15


@dataclass
class PlaceTypeConfig:
    seed: int = 42
    test_size: float = 0.25
    val_share: float = 0.20  # of the development part
    cal_share: float = 0.20  # of the development part
    alphas: Sequence[float] = (0.5, 1, 2, 5, 10, 20, 50, 100)
    te_folds: int = 5
    te_alpha: float | None = None  # None: the alpha chosen for freq_neighbourhood
    candidate_columns: Sequence[str] = tuple(CANDIDATE_COLUMNS)
    #: a column is kept when dropping it worsens the validation log loss by more than
    #: `keep_tolerance` AND by more than `keep_z` noise standard deviations (paired per-record
    #: standard error combined with the seed-to-seed spread of the full model)
    keep_tolerance: float = 0.0
    keep_z: float = 2.0
    #: extra fits of the all-candidates model under other seeds, to measure training noise
    noise_seeds: int = 2
    run_ablation: bool = True
    xgb_params: dict = field(
        default_factory=lambda: {
            "eta": 0.08,
            "max_depth": 3,
            "min_child_weight": 10.0,
            "subsample": 0.8,
            "colsample_bytree": 0.8,
            "lambda": 10.0,
            "max_bin": 64,
        }
    )
    max_rounds: int = 1500
    early_stopping_rounds: int = 50
    #: XGBoost threads. 1 by default: with the 2 cores shared by other processes, OpenMP
    #: threads oversubscribe and a 2-thread fit was 20× slower than a 1-thread one.
    n_jobs: int = 1
    calibration_bins: int = 10
    #: k of the small-cell rule: cells (and calibration bins) of fewer records are not
    #: published. No default here: the project's k is one setting (the var of
    #: dbt_project.yml, orchestration.config.MIN_CELL_RECORDS) that the caller passes.
    min_cell_records: int = field(kw_only=True)
    #: refit the final model on fit + val (trees scaled by the size ratio) before calibrating
    refit_on_val: bool = True


@dataclass
class PlaceTypeResult:
    metrics: pd.DataFrame
    calibration: pd.DataFrame
    ablation: pd.DataFrame
    probabilities: pd.DataFrame
    info: dict


def encode_target(place_type: pd.Series) -> np.ndarray:
    index = {c: i for i, c in enumerate(CLASSES)}
    y = place_type.map(index)
    if y.isna().any():
        bad = sorted(place_type[y.isna()].astype(str).unique())[:5]
        raise ValueError(f"place types outside the 10 groups: {bad}")
    return y.to_numpy(dtype=int)


RECORDS_SQL = """
select neighbourhood, brand, weekday, period, offence, age, sex, place_type
from marts.saopaulo_phone_theft_records
order by source_file, source_row
"""


def load_records(tables) -> pd.DataFrame:
    """The usable records from the dbt mart (a :class:`ml.tables.Tables`)."""
    return tables.read(RECORDS_SQL)


#: The ml.* table of each result frame.
RESULT_TABLES = {
    "saopaulo_metrics": "metrics",
    "saopaulo_calibration": "calibration",
    "saopaulo_ablation": "ablation",
    "saopaulo_place_probabilities": "probabilities",
}


def result_frames(result: PlaceTypeResult, run_id: str) -> dict[str, pd.DataFrame]:
    """The frames of ml.saopaulo_metrics, _calibration, _ablation, _place_probabilities for
    ``Tables.append`` (one transaction; every row carries ``run_id``, each run a vintage).
    The ablation's text and flag columns are typed: a run without ablation leaves them all
    missing, which must not give the appended table another type."""
    frames = {}
    for name, attr in RESULT_TABLES.items():
        out = getattr(result, attr).copy()
        out.insert(0, "run_id", run_id)
        frames[name] = out
    ablation = frames["saopaulo_ablation"]
    ablation["column"] = ablation["column"].astype("string")
    ablation["kept"] = ablation["kept"].astype("boolean")
    return frames
