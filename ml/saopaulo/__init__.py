"""São Paulo phone robberies and thefts: where does it happen? A calibrated place-type classifier.

Plain Python (no Dagster). Input: the records of ``marts.saopaulo_phone_theft_records`` (one row
per robbery/theft, columns ``neighbourhood, brand, weekday, period, offence, age, sex,
place_type``). Output: held-out metrics per model, a reliability table, a feature ablation and
a scored table of place-type probabilities per (neighbourhood, weekday, period, brand) cell.

Protocol (everything with a fixed seed):

* test split: random 25 % of the records, stratified by place type; touched only for the final
  scores (and the informative ``test_log_loss`` column of the ablation, used for no decision);
* the other 75 % ("development") is split, stratified, into ``fit`` (60 %), ``val`` (20 %) and
  ``cal`` (20 %): models are fitted on ``fit``; smoothing strengths, XGBoost's number of trees
  and the feature set are chosen on ``val``; the final XGBoost is refitted on ``fit`` + ``val``
  with that number of trees (scaled to the larger set); the temperature is fitted on ``cal``;
* the frequency baselines are refitted on the whole development part once their smoothing
  strength is chosen (they need no calibration), which can only favour them.

Models:

* ``prior`` — class frequencies of the development part, the same for every record;
* ``freq_neighbourhood`` — class counts per neighbourhood plus ``alpha`` × the city prior
  (additive/Dirichlet smoothing, ``alpha`` chosen on ``val``): a neighbourhood with few records
  stays near the city prior; an unseen one gets the prior;
* ``freq_neighbourhood_period`` — the same per neighbourhood × period;
* ``freq_offence_neighbourhood_period`` — the same per offence × neighbourhood × period, smoothed
  toward the offence's prior: the lookup table that knows everything the model's strongest
  features know, to show what the model adds beyond counting;
* ``xgboost_uncalibrated`` / ``xgboost`` — multi:softprob XGBoost on the selected features,
  before / after temperature scaling;
* ``xgboost_no_offence`` — the calibrated model without the offence (ROUBO/FURTO) column, the
  question the seed system answered (profile, phone, neighbourhood, time; not the offence).

Neighbourhoods (1,285 in the real file, half with fewer than 5 records) enter the model as
target encodings: the smoothed class frequencies of the neighbourhood (and of its crossings with
offence and period, see :func:`features_for`) plus log(1 + records), computed out-of-fold
(5 folds) on the training rows and from all training rows for the other rows, so no row sees
its own label. This holds for the published table too: its records are scored with
:meth:`Design.scoring_matrix` (the training rows keep the out-of-fold encodings the model was
fitted on). Feature selection: see :func:`run` and docs/saopaulo.md.

Modules: :mod:`~ml.saopaulo.schema` (classes, config, result, the frames
read and appended through :mod:`ml.tables`),
:mod:`~ml.saopaulo.metrics` (scikit-learn's metrics, reliability bins, temperature),
:mod:`~ml.saopaulo.encoding` (frequencies, ``TargetEncoder`` design) and
:mod:`~ml.saopaulo.protocol` (:class:`PlaceTypeXGB`, an ``XGBClassifier``
estimator; :func:`run`; the cell table).
"""

from ml.saopaulo.encoding import Design, features_for, prior_of, smoothed_frequencies
from ml.saopaulo.metrics import (
    TemperatureScaler,
    brier,
    expected_calibration_error,
    log_loss,
    logits_of,
    macro_f1,
    merge_small_bins,
    reliability_table,
    score,
    softmax,
    top_k,
)
from ml.saopaulo.protocol import (
    FittedXGB,
    PlaceTypeXGB,
    cell_probabilities,
    fit_xgb,
    refit_xgb,
    run,
    split_indices,
    suppression_counts,
)
from ml.saopaulo.schema import (
    CANDIDATE_COLUMNS,
    CELL_KEYS,
    CLASSES,
    TARGET_ENCODED,
    K,
    PlaceTypeConfig,
    PlaceTypeResult,
    encode_target,
    load_records,
    result_frames,
)

__all__ = [
    "CANDIDATE_COLUMNS",
    "CELL_KEYS",
    "CLASSES",
    "K",
    "TARGET_ENCODED",
    "Design",
    "FittedXGB",
    "PlaceTypeXGB",
    "PlaceTypeConfig",
    "PlaceTypeResult",
    "TemperatureScaler",
    "brier",
    "cell_probabilities",
    "encode_target",
    "expected_calibration_error",
    "features_for",
    "fit_xgb",
    "load_records",
    "log_loss",
    "logits_of",
    "macro_f1",
    "merge_small_bins",
    "prior_of",
    "refit_xgb",
    "reliability_table",
    "result_frames",
    "run",
    "score",
    "smoothed_frequencies",
    "softmax",
    "split_indices",
    "suppression_counts",
    "top_k",
]
