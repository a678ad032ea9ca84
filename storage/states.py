"""Trial lifecycle: the single source of truth for which state changes are legal.

Every worker, the orchestrator and the CLI change trial state only through
``Store.set_trial_state``, which consults ``check_transition`` below, so the
rules live in exactly one place::

                +---------+
                | PENDING |
                +---------+
                  |     |
         started  |     |  could not start (bad config, OOM at load, ...)
                  v     |
                +---------+            |
                | RUNNING |            |
                +---------+            |
               /     |     \\           |
              v      v      v          v
      +-----------+ +--------+ +--------+
      | COMPLETED | | PRUNED | | FAILED |
      +-----------+ +--------+ +--------+

    Finished states (COMPLETED, PRUNED, FAILED) are final: nothing leaves them,
    so a late or duplicated message from a worker can never resurrect a trial.
"""

from __future__ import annotations

import enum


class TrialState(str, enum.Enum):
    """Stored by name, so renaming a member is a schema change; adding one is not."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    PRUNED = "PRUNED"
    FAILED = "FAILED"

    @property
    def is_finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset({TrialState.COMPLETED, TrialState.PRUNED, TrialState.FAILED})

ALLOWED_TRANSITIONS: frozenset[tuple[TrialState, TrialState]] = frozenset(
    {
        (TrialState.PENDING, TrialState.RUNNING),
        (TrialState.PENDING, TrialState.FAILED),
        (TrialState.RUNNING, TrialState.COMPLETED),
        (TrialState.RUNNING, TrialState.PRUNED),
        (TrialState.RUNNING, TrialState.FAILED),
    }
)


class StateTransitionError(ValueError):
    """A ValueError so callers validating input can catch both uniformly."""


def check_transition(trial_id: int, current: TrialState, new: TrialState) -> None:
    """Raise with a message that names the trial, so logs from many workers stay readable."""
    if current.is_finished:
        raise StateTransitionError(
            f"trial {trial_id} is already {current.name}; finished trials cannot change state"
        )
    if (current, new) not in ALLOWED_TRANSITIONS:
        raise StateTransitionError(
            f"trial {trial_id}: transition {current.name} -> {new.name} is not allowed"
        )
