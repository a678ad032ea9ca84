"""How a trial's end reaches Optuna: one mapping from the store's states, one way to tell.

The store is the record (a worker writes its own row; the orchestrator writes the rows of
workers that died); Optuna is told what the store says, never the other way round, so the
two cannot disagree. Optuna has no CANCELLED and no failure kinds, so both travel as the
user attr `sweepctl_failure` on a FAIL trial: retries and resume read it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState as OptunaState

from sweepctl.stats import Interval
from sweepctl.storage import FailureKind, TrialState
from sweepctl.storage.optuna_adapter import optuna_state, set_attr_unless_finished

FAILURE_ATTR = "sweepctl_failure"  # a FailureKind value, or "cancelled"
ATTEMPT_ATTR = "sweepctl_attempt"  # 1-based try of this configuration in its stage
RETRY_OF_ATTR = "sweepctl_retry_of"  # Optuna number of the try this one repeats
BATCH_HALVINGS_ATTR = "sweepctl_batch_halvings"  # OOM retries before this try (spec.batch)
NOISE_ATTR = "sweepctl_noise"  # half-width of the objective's evaluation-set interval
CANCELLED = "cancelled"


@dataclass(frozen=True)
class Outcome:
    """How one trial ended, as the store has it."""

    number: int
    state: TrialState
    objective: float | None = None
    failure_kind: str | None = None
    trial_id: int | None = None
    error: str | None = None
    noise: float | None = None  # evaluation-set interval half-width (workers.noise)

    @property
    def failure(self) -> str | None:
        """What `sweepctl_failure` holds: the kind, "cancelled", or None for a success."""
        if self.state is TrialState.CANCELLED:
            return CANCELLED
        if self.state is TrialState.FAILED:
            return self.failure_kind or FailureKind.ERROR.value
        return None

    @classmethod
    def of_record(cls, number: int, record: Any) -> Outcome:
        return cls(
            number,
            record.state,
            objective=record.objective,
            failure_kind=record.failure_kind,
            trial_id=record.id,
            error=record.error,
            noise=_half_width((record.metrics or {}).get("objective_interval")),
        )


def _half_width(interval: Any) -> float | None:
    """The trial's own evaluation noise, for comparisons that must not rank noise."""
    if not isinstance(interval, dict):
        return None
    try:
        return Interval.from_dict(interval).half_width
    except (TypeError, ValueError):  # a row stored by something other than workers.noise
        return None


def tell(study: optuna.Study, outcome: Outcome) -> None:
    """Tell Optuna a finished trial's end; a trial already finished there is left alone."""
    state = optuna_state(outcome.state)
    if outcome.failure is not None:
        set_attr_unless_finished(study, outcome.number, FAILURE_ATTR, outcome.failure)
    if outcome.noise is not None:
        set_attr_unless_finished(study, outcome.number, NOISE_ATTR, outcome.noise)
    if state is OptunaState.COMPLETE and outcome.objective is not None:
        study.tell(outcome.number, outcome.objective, skip_if_finished=True)
    elif state is OptunaState.PRUNED:
        study.tell(outcome.number, state=OptunaState.PRUNED, skip_if_finished=True)
    else:  # a COMPLETED row without an objective cannot rank: FAIL, as before
        study.tell(outcome.number, state=OptunaState.FAIL, skip_if_finished=True)
