"""What a sweep sends to a worker process, and what comes back.

A `TrialJob` is plain data (it crosses a process boundary through Ray): the validated spec
as a dict, the parameter values of this trial, where the store and the Optuna study live,
and which runner executes it. `execute_job` is the only entry point a backend calls; it
never raises for a trial that fails, so one bad configuration cannot take the sweep down.

Runners:
    transformer      fine-tunes with Trainer (workers.trial.run_trial)
    replay:<file>    replays a real learning curve from the NMTLC benchmark (workers.replay)
    noop             records a trial with a constant objective (orchestration overhead)
    python:MOD:FUNC  any importable function with the Runner signature (custom workers)
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrialJob:
    sweep: str
    stage: str
    optuna_number: int
    params: dict[str, Any]
    spec: dict[str, Any]
    db_url: str
    home: str
    runner: str = "transformer"
    pruning: dict[str, Any] = field(default_factory=dict)
    seed_offset: int = 0
    # The PENDING row the orchestrator created for this trial (None: the runner creates
    # one, as `sweepctl trial` does) and how often the worker beats into it.
    trial_id: int | None = None
    heartbeat_interval: float = 30.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def execute_job(job: TrialJob) -> JobResult:
    """Run one trial in this process; every failure becomes a FAILED result with its kind,
    recorded on the orchestrator's row when the runner could not record it itself."""
    from sweepctl.workers.heartbeat import Heartbeat

    try:
        if job.trial_id is None:
            result = _runner_for(job.runner)(job, _pruning_sinks(job))
        else:
            with Heartbeat(job.db_url, job.trial_id, job.heartbeat_interval):
                result = _runner_for(job.runner)(job, _pruning_sinks(job))
    except Exception as exc:  # the sweep goes on; the reason is kept
        kind = failure_kind_of(exc)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        trace = traceback.format_exc()
        _record_failure(job, reason, trace, kind)
        return JobResult(
            job.optuna_number,
            "FAILED",
            trial_id=job.trial_id,
            error=reason + "\n" + trace,
            failure_kind=kind,
        )
    devices = os.environ.get("CUDA_VISIBLE_DEVICES")
    return JobResult(**{**asdict(result), "visible_devices": devices})


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


def _record_failure(job: TrialJob, reason: str, trace: str, kind: str) -> None:
    """The runner failed before it could finish its row (bad input at load, a crash in
    setup): finish it here so the store never keeps a PENDING/RUNNING row nobody owns."""
    if job.trial_id is None:
        return
    from sweepctl.storage import StateTransitionError, Store, StoreError, TrialState

    try:
        with Store(job.db_url) as store:
            if not store.get_trial(job.trial_id).state.is_finished:
                store.set_trial_state(
                    job.trial_id, TrialState.FAILED, error=reason, traceback=trace,
                    failure_kind=kind,
                )  # fmt: skip
    except (StateTransitionError, StoreError):
        pass  # finished concurrently, or the store is down: the orchestrator records it


def _runner_for(name: str) -> Runner:
    kind, _, argument = name.partition(":")
    if kind == "transformer":
        from sweepctl.workers.trial import run_job

        return run_job
    if kind == "replay":
        from sweepctl.workers.replay import ReplayRunner

        return ReplayRunner.cached(Path(argument))
    if kind == "noop":
        from sweepctl.workers.replay import run_noop

        return run_noop
    if kind == "python":
        import importlib

        module, _, function = argument.partition(":")
        return getattr(importlib.import_module(module), function)
    raise ValueError(f"unknown runner '{name}'")


def _pruning_sinks(job: TrialJob) -> list[Any]:
    if job.pruning.get("algorithm", "none") == "none":
        return []
    from sweepctl.workers.pruning import OptunaPruningSink

    return [OptunaPruningSink.for_job(job)]
