"""Trial, sweep and stage lifecycles: the single source of truth for legal state changes.

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
               /     |     \\    \\    |
              v      v      v    v    v
      +-----------+ +--------+ +--------+ +-----------+
      | COMPLETED | | PRUNED | | FAILED | | CANCELLED |  (PENDING -> CANCELLED too)
      +-----------+ +--------+ +--------+ +-----------+

    Finished states (COMPLETED, PRUNED, FAILED, CANCELLED) are final: nothing leaves
    them, so a late or duplicated message from a worker can never resurrect a trial.

FAILED carries a ``FailureKind`` (why it failed), and CANCELLED means nobody let it
finish (`sweepctl cancel`, Ctrl-C/SIGTERM of `launch`, an orchestrator that died). The
record so keeps "this configuration is bad" apart from "this run was interrupted" and
"the machine lost it", as Ax keeps failed, abandoned and early-stopped trials apart.
Retries (orchestrator.retries) read the kind: infrastructure failures are retried, a
NaN loss or a bad input never is.

Sweeps and stages follow ``SweepState`` (below), which has its own diagram.
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
    CANCELLED = "CANCELLED"

    @property
    def is_finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset(
    {TrialState.COMPLETED, TrialState.PRUNED, TrialState.FAILED, TrialState.CANCELLED}
)


class FailureKind(str, enum.Enum):
    """Why a FAILED trial failed; stored by value next to the state.

    error        the training code raised (the user's exception, a crash in Trainer)
    nan          the loss became NaN/inf: this configuration diverges
    oom          out of memory (CUDA or host), raised in the trial or Ray's OOM killer
    timeout      resources.trial_timeout elapsed; the evaluations so far are kept
    worker_lost  the worker process died (SIGKILL, segfault), stopped beating, or lost its store
    bad_input    the spec, data or model the trial was given cannot run
    """

    ERROR = "error"
    NAN = "nan"
    OOM = "oom"
    TIMEOUT = "timeout"
    WORKER_LOST = "worker_lost"
    BAD_INPUT = "bad_input"

    @property
    def is_deterministic(self) -> bool:
        """Running the same configuration again would fail the same way."""
        return self in (FailureKind.ERROR, FailureKind.NAN, FailureKind.BAD_INPUT)


ALLOWED_TRANSITIONS: frozenset[tuple[TrialState, TrialState]] = frozenset(
    {
        (TrialState.PENDING, TrialState.RUNNING),
        (TrialState.PENDING, TrialState.FAILED),
        (TrialState.PENDING, TrialState.CANCELLED),
        (TrialState.RUNNING, TrialState.COMPLETED),
        (TrialState.RUNNING, TrialState.PRUNED),
        (TrialState.RUNNING, TrialState.FAILED),
        (TrialState.RUNNING, TrialState.CANCELLED),
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


class SweepState(str, enum.Enum):
    """Lifecycle of a sweep and of each of its stages (one enum: the rules are the same).

    ``Store.set_sweep_state`` and ``Store.set_stage_state`` are the only writers and
    both consult ``check_sweep_transition``::

                     +---------+
                     | PENDING |------------------+
                     +---------+                  |
                          | start                 | cancel before start
                          v                       v
                     +---------+   cancel   +-----------+
             +------>| RUNNING |----------->| CANCELLED |
             |       +---------+            +-----------+
             |        |       |        |          |
             |   done |       | error  | budget   |
             |        v       v        v          |
             | +-----------+ +--------+ +---------+ |
             | | COMPLETED | | FAILED | | STOPPED | |
             | +-----------+ +--------+ +---------+ |
             |                   |          |       |
             +-------------------+----------+-------+
                           resume

    Plus RUNNING -> RUNNING as a no-op: an orchestrator that crashed left its sweep
    RUNNING, and the resumed successor re-enters that state.

    Unlike trials, FAILED, CANCELLED and STOPPED are not final, because a sweep is hours of
    work worth resuming. COMPLETED is final, so a stale orchestrator can never
    reopen a finished sweep or overwrite a stage's ranking. Stored by name.
    """

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    STOPPED = "STOPPED"  # a budget was used up; `error` says which


SWEEP_TRANSITIONS: frozenset[tuple[SweepState, SweepState]] = frozenset(
    {
        (SweepState.PENDING, SweepState.RUNNING),
        (SweepState.PENDING, SweepState.CANCELLED),
        (SweepState.RUNNING, SweepState.RUNNING),
        (SweepState.RUNNING, SweepState.COMPLETED),
        (SweepState.RUNNING, SweepState.FAILED),
        (SweepState.RUNNING, SweepState.CANCELLED),
        (SweepState.FAILED, SweepState.RUNNING),
        (SweepState.CANCELLED, SweepState.RUNNING),
        (SweepState.RUNNING, SweepState.STOPPED),
        (SweepState.STOPPED, SweepState.RUNNING),
    }
)


def check_sweep_transition(label: str, current: SweepState, new: SweepState) -> None:
    """``label`` names the sweep or stage ("sweep 'x'", "stage 'coarse' of sweep 'x'")."""
    if current is SweepState.COMPLETED:
        raise StateTransitionError(f"{label} is already COMPLETED; it cannot change state")
    if (current, new) not in SWEEP_TRANSITIONS:
        raise StateTransitionError(
            f"{label}: transition {current.name} -> {new.name} is not allowed"
        )
