"""What a sweep sends to a worker process, and what comes back.

A `TrialJob` is the fully resolved description of one trial: the orchestrator has already
applied this trial's values and its repeat's seed to the spec and left the plan out, so a
worker validates the spec once, routes nothing and needs no strategy plugin to run it.
It is plain data (it crosses a process boundary through Ray). `execute.execute_job` runs
one; the runners (trial, replay, a `python:` function) take a job and return a JobResult.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sweepctl.spec.models import RESOLVED, SweepSpec
from sweepctl.spec.plan import PruningSpec


@dataclass(frozen=True)
class TrialJob:
    sweep: str
    stage: str | None
    optuna_number: int
    params: dict[str, Any]  # this trial's searched values, as its record shows them
    spec: dict[str, Any]  # the resolved spec: params and the repeat's seed applied, no plan
    db_url: str
    home: str
    runner: str = "transformer"
    pruning: PruningSpec | None = None  # None: this trial is never pruned (OFAT)
    repeat: int = 0  # which repeat of its configuration; its seed is already in `spec`
    # The PENDING row the orchestrator created for this trial (None: the runner creates
    # one, as `sweepctl trial` does) and how often the worker beats into it.
    trial_id: int | None = None
    heartbeat_interval: float = 30.0
    attempt: int = 1  # which try of its configuration (fault injection reads it)
    # The try before this one ran out of memory: Ray starts it in a new worker process
    after_oom: bool = False
    # Where this try runs when not where the spec says: 1.0 for a packed trial retried
    # alone on a device after running out of memory (orchestrator.retries)
    gpus_per_trial: float | None = None
    # What the orchestrator changed for this try and why (the OOM fallback's batch, the
    # placement), merged into the row's resolved config so the record says so
    config_notes: dict[str, Any] = field(default_factory=dict)
    # Earlier interrupted tries of this configuration (store ids, newest first) whose
    # latest checkpoint this try may continue from (workers.continuation)
    continue_from: tuple[int, ...] = ()

    @cached_property
    def trial_spec(self) -> SweepSpec:
        """The spec, validated once per job however many parts of the worker read it."""
        return SweepSpec.model_validate(self.spec, context={RESOLVED: True})


@dataclass(frozen=True)
class JobResult:
    optuna_number: int
    state: str  # COMPLETED | PRUNED | FAILED (storage.TrialState names)
    objective: float | None = None
    trial_id: int | None = None
    epochs_run: int = 0
    max_epochs: int = 0
    error: str | None = None
    visible_devices: str | None = None
    failure_kind: str | None = None  # storage.FailureKind value when state is FAILED


Runner = Callable[[TrialJob, list[Any]], JobResult]


def failure_kind_of(exc: BaseException) -> str:
    """Sort an exception into storage.FailureKind: retries depend on it."""
    from sweepctl.spec.errors import UsageError
    from sweepctl.workers.rows import NonFiniteLossError

    if isinstance(exc, UsageError):
        return "bad_input"
    if _is_store_failure(exc):
        return "worker_lost"  # the worker lost its database (a restart, a failover)
    if isinstance(exc, NonFiniteLossError):
        return "nan"
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return "oom"  # torch.OutOfMemoryError (CUDA), without importing torch here
    if "out of memory" in str(exc).lower():
        return "oom"  # older CUDA builds raise a plain RuntimeError
    return "error"


def _is_store_failure(exc: BaseException) -> bool:
    from sqlalchemy.exc import InterfaceError, OperationalError

    from sweepctl.storage import StoreError

    return isinstance(exc, (StoreError, OperationalError, InterfaceError))


def first_line(exc: BaseException) -> str:
    """What a trial's `error` shows: the exception's first line, or its type."""
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
