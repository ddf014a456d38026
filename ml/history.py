"""Minimum history: the ONE place that says how much cleaned history a source needs, which
test cutoff a run uses, and the bounds of the run settings (docs/forecasting.md, "Minimum
history").

Every forecast comes out of the rolling-origin backtest (it picks each series' model and
calibrates its intervals), so a source is forecast only when the whole backtest plan fits in
its data; otherwise it is skipped with a one-line reason and the other sources go on. With a
plan whose longest horizon is H (the operational horizon when it is longer), the days needed
are, counted from the first day of the source's data:

* ``FIRST_FIT_DAYS`` (28) before the first validation cutoff: the longest rolling window of the
  features (``roll_*_28``; the baselines and the Poisson reference read it) and four weeks of
  targets for the first fit;
* ``H − 1 + n_cutoffs × window`` for the validation cutoffs (139 with the default plan), which
  ends at the test cutoff;
* a test window of at least H days (so that every horizon is scored); by default the last
  ``max(TEST_DAYS, H)`` days.

The yearly lag (``lag_364``) is optional: it stays NaN in a shorter history, which the models
accept. :func:`assess` applies these rules to one source before anything is fitted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

from ml.features import ROLL_WINDOWS

#: default out-of-sample test window (days) when no cutoff is given (at least the horizon)
TEST_DAYS = 56
#: the longest operational horizon (days) a run accepts
MAX_HORIZON = 366
#: days of history before the first validation cutoff: the longest feature window, which is
#: also four weeks of targets for the first fit
FIRST_FIT_DAYS = max(ROLL_WINDOWS)

FORECAST = "forecast"
SKIPPED = "skipped"


def horizon_problem(horizon: object) -> str | None:
    """Why ``horizon`` is not an accepted operational horizon (None when it is)."""
    if isinstance(horizon, bool) or not isinstance(horizon, int):
        return f"must be a whole number of days between 1 and {MAX_HORIZON}"
    if not 1 <= horizon <= MAX_HORIZON:
        return f"must be between 1 and {MAX_HORIZON} days"
    return None


def train_days_problem(train_days: object) -> str | None:
    """Why ``train_days`` is not an accepted training window (None when it is; None = the
    profile's default)."""
    if train_days is None:
        return None
    if isinstance(train_days, bool) or not isinstance(train_days, int) or train_days < 1:
        return "must be a positive whole number of days"
    return None


@dataclass(frozen=True)
class HistoryNeeds:
    """Days of history a backtest plan needs (see the module docstring)."""

    horizon: int  # the longest horizon of the plan
    first_fit: int  # before the first validation cutoff
    validation: int  # from the first validation cutoff to the test cutoff
    default_test: int  # the default test window

    @property
    def before_cutoff(self) -> int:
        return self.first_fit + self.validation

    @property
    def min_test(self) -> int:
        return self.horizon

    @property
    def total(self) -> int:
        """Days needed with the default test window."""
        return self.before_cutoff + self.default_test

    def explain(self, n_cutoffs: int, window: int) -> str:
        return (
            f"{FIRST_FIT_DAYS}-day features, {n_cutoffs} validation cutoffs × {window} days, "
            f"horizon {self.horizon}"
        )


def needs(plan) -> HistoryNeeds:
    """The history :class:`ml.backtest.BacktestPlan` ``plan`` needs (its horizons include the
    operational horizon: ``RunConfig.effective_plan()``)."""
    h = max(plan.horizons)
    return HistoryNeeds(
        horizon=h,
        first_fit=FIRST_FIT_DAYS,
        validation=h - 1 + plan.n_cutoffs * plan.window,
        default_test=max(TEST_DAYS, h),
    )


@dataclass(frozen=True)
class SourceStatus:
    """Whether one source is forecast in a run, with which test cutoff, or why not."""

    source: str
    status: str  # FORECAST or SKIPPED
    first_day: date | None
    last_day: date | None
    history_days: int
    min_history_days: int
    test_cutoff: date | None = None
    cutoff_setting: str | None = None  # the cutoff asked for, as given (None: default)
    skipped_reason: str | None = None  # one line, for a skipped source
    cutoff_note: str | None = None  # why a global cutoff was not used for this source

    @property
    def forecast(self) -> bool:
        return self.status == FORECAST

    def line(self) -> str:
        """One line for logs and the summary."""
        if not self.forecast:
            return str(self.skipped_reason)  # names the source
        text = f"{self.source}: forecast, test from {self.test_cutoff}"
        return text + (f" ({self.cutoff_note})" if self.cutoff_note else "")

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


def _span(first: date | None, last: date | None) -> str:
    return f"{first} → {last}" if first and last else "no rows"


def _cutoff_problem(
    first: date, last: date, cutoff: date, need: HistoryNeeds, plan_text: str
) -> str | None:
    """Why test cutoff ``cutoff`` does not fit data ``first`` … ``last``, as the end of a
    sentence about the cutoff (None when it fits)."""
    if cutoff > last:
        return f"is after the last day of its data ({last})"
    before = (cutoff - first).days
    if before < need.before_cutoff:
        return (
            f"leaves {max(before, 0)} days of history before it (data from {first}); "
            f"the backtest needs at least {need.before_cutoff} ({plan_text})"
        )
    test = (last - cutoff).days + 1
    if test < need.min_test:
        return (
            f"leaves a {test}-day test window (to {last}); horizon {need.horizon} needs at "
            f"least {need.min_test}"
        )
    return None


def assess(
    source: str,
    first_day: date | None,
    last_day: date | None,
    plan,
    cutoff: date | None = None,
    global_cutoff: date | None = None,
) -> SourceStatus:
    """The status of ``source`` whose cleaned daily series span ``first_day`` … ``last_day``
    (None: no rows after cleaning), for backtest ``plan`` (with the operational horizon).

    ``cutoff`` (asked for this source) must fit, else the source is skipped. ``global_cutoff``
    (asked for every source) applies where it fits; a source where it does not uses its
    default cutoff (the last ``max(TEST_DAYS, H)`` days) and says so in ``cutoff_note``."""
    need = needs(plan)
    plan_text = need.explain(plan.n_cutoffs, plan.window)
    if first_day is None or last_day is None:
        return SourceStatus(
            source,
            SKIPPED,
            None,
            None,
            0,
            need.total,
            cutoff_setting=None if cutoff is None else str(cutoff),
            skipped_reason=f"{source}: no daily counts after cleaning — skipped",
        )
    days = (last_day - first_day).days + 1
    base = {
        "source": source,
        "first_day": first_day,
        "last_day": last_day,
        "history_days": days,
        "min_history_days": need.total,
    }
    if cutoff is not None:
        problem = _cutoff_problem(first_day, last_day, cutoff, need, plan_text)
        if problem:
            return SourceStatus(
                **base,
                status=SKIPPED,
                cutoff_setting=str(cutoff),
                skipped_reason=f"{source}: cutoff {cutoff} {problem} — skipped",
            )
        return SourceStatus(**base, status=FORECAST, test_cutoff=cutoff, cutoff_setting=str(cutoff))
    note = None
    if global_cutoff is not None:
        problem = _cutoff_problem(first_day, last_day, global_cutoff, need, plan_text)
        if problem is None:
            return SourceStatus(
                **base,
                status=FORECAST,
                test_cutoff=global_cutoff,
                cutoff_setting=str(global_cutoff),
            )
        note = f"global cutoff {global_cutoff} not used: it {problem}; default cutoff"
    if days < need.total:
        return SourceStatus(
            **base,
            status=SKIPPED,
            cutoff_setting=None if global_cutoff is None else str(global_cutoff),
            skipped_reason=(
                f"{source}: {days} days of history after cleaning ({_span(first_day, last_day)}); "
                f"forecasting needs at least {need.total} ({plan_text}, "
                f"{need.default_test}-day test window) — skipped"
            ),
            cutoff_note=note,
        )
    default = last_day - timedelta(days=need.default_test - 1)
    return SourceStatus(
        **base,
        status=FORECAST,
        test_cutoff=default,
        cutoff_setting=None if global_cutoff is None else str(global_cutoff),
        cutoff_note=note,
    )


class InsufficientHistory(ValueError):
    """A source's data does not hold what the backtest plan needs (the message is one line)."""


def check(source: str, first_day: date | None, last_day: date | None, plan, cutoff: date) -> None:
    """Raise :class:`InsufficientHistory` when ``cutoff`` does not fit the data (the guard of
    ``ml.pipeline.run_source``, for callers that did not :func:`assess` first)."""
    status = assess(source, first_day, last_day, plan, cutoff=cutoff)
    if not status.forecast:
        raise InsufficientHistory(status.skipped_reason)
