"""A runner whose every trial fails inside its lifecycle, as a broken configuration does
(`runner="python:tests.failing_runner:run"`): the row goes RUNNING, then FAILED with the
exception, its traceback and kind `error`, which no retry would fix."""

from __future__ import annotations

from typing import Any

from sweepctl.storage import Store
from sweepctl.workers.job import JobResult, TrialJob
from sweepctl.workers.lifecycle import NewTrial, trial_lifecycle

MESSAGE = "CUDA error: device-side assert triggered (tests.failing_runner)"
RUNNER = "python:tests.failing_runner:run"


def run(job: TrialJob, sinks: list[Any]) -> JobResult:
    new = NewTrial(job.sweep, job.spec, dict(job.params), job.stage, job.optuna_number)
    with (
        Store(job.db_url) as store,
        trial_lifecycle(store, {"runner": "failing"}, trial_id=job.trial_id, new=new) as trial,
    ):
        raise RuntimeError(MESSAGE)
    failure = trial.failure
    return JobResult(
        job.optuna_number,
        trial.state.value,
        trial_id=trial.id,
        error=failure.reason if failure else None,
        failure_kind=failure.kind if failure else None,
    )
