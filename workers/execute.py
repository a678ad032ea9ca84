"""The worker's entry point: run one TrialJob in this process, whatever its runner.

`execute_job` is the only function a backend calls (Ray loads it by this module path on
every node). It never raises for a trial that fails, so one bad configuration cannot take
the sweep down.

Runners:
    transformer      fine-tunes with Trainer (workers.trial.run_job)
    replay:<file>    replays a real learning curve from the NMTLC benchmark (workers.replay)
    noop             records a trial with a constant objective (orchestration overhead)
    python:MOD:FUNC  any importable function with the Runner signature (custom workers;
                     workers.lifecycle.trial_lifecycle gives them the row's whole path)
"""

from __future__ import annotations

import importlib
import os
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sweepctl.workers.job import JobResult, Runner, TrialJob, failure_kind_of, first_line


def execute_job(job: TrialJob) -> JobResult:
    """Run one trial; every failure becomes a FAILED result with its kind, recorded on the
    orchestrator's row when the runner could not record it itself."""
    from sweepctl.workers.heartbeat import Heartbeat

    try:
        if job.trial_id is None:
            result = runner_for(job.runner)(job, _pruning_sinks(job))
        else:
            with Heartbeat(job.db_url, job.trial_id, job.heartbeat_interval):
                result = runner_for(job.runner)(job, _pruning_sinks(job))
    except Exception as exc:  # the sweep goes on; the reason is kept
        kind = failure_kind_of(exc)
        reason = first_line(exc)
        trace = traceback.format_exc()
        _record_failure(job, reason, trace, kind)
        return JobResult(
            job.optuna_number,
            "FAILED",
            trial_id=job.trial_id,
            error=reason + "\n" + trace,
            failure_kind=kind,
        )
    if result.failure_kind == "oom":
        _release_memory()
    devices = os.environ.get("CUDA_VISIBLE_DEVICES")
    return JobResult(**{**asdict(result), "visible_devices": devices})


def _release_memory() -> None:
    """What this process can give back after an OOM. A GPU trial's worker exits after its
    task anyway (backends.RayBackend, max_calls=1), which frees all of it; this is for a
    process that goes on (the inline backend, a CPU worker)."""
    import gc

    gc.collect()
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _record_failure(job: TrialJob, reason: str, trace: str, kind: str) -> None:
    """The runner failed before its row's lifecycle began (bad input at load, a crash in
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


def runner_for(name: str) -> Runner:
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
        module, _, function = argument.partition(":")
        runner: Runner = getattr(importlib.import_module(module), function)
        return runner
    raise ValueError(f"unknown runner '{name}'")


def _pruning_sinks(job: TrialJob) -> list[Any]:
    if job.pruning is None or job.pruning.algorithm == "none":
        return []
    from sweepctl.workers.pruning import OptunaPruningSink

    return [OptunaPruningSink.for_job(job)]
