"""A runner whose worker freezes while it holds SQLite's write lock, as a worker stopped
(SIGSTOP, a swapped-out host) in the middle of a write transaction does: every other
writer of the database, the orchestrator included, waits behind it. Only the first
attempt of the point `FROZEN_RATE` freezes; its retry and every other point run the
analytic objective (`python:tests.frozen_lock:run`)."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from typing import Any

from sqlalchemy.engine import make_url

from sweepctl.storage import Store
from sweepctl.workers.job import JobResult, TrialJob
from tests import analytic

FROZEN_RATE = 1e-5


def run(job: TrialJob, sinks: list[Any]) -> JobResult:
    if job.params["learning_rate"] == FROZEN_RATE and _attempt(job) == 1:
        _wait_for_first_beat(job)
        connection = sqlite3.connect(make_url(job.db_url).database or "", isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")  # the database's only write lock
        os.kill(os.getpid(), signal.SIGSTOP)
    return analytic.run(job, sinks)


def _attempt(job: TrialJob) -> int:
    with Store(job.db_url) as store:
        return store.get_trial(job.trial_id or 0).attempt


def _wait_for_first_beat(job: TrialJob) -> None:
    """Freeze only once the trial has a worker on record, as a trial hung mid-run has."""
    with Store(job.db_url) as store:
        while store.get_trial(job.trial_id or 0).heartbeat_at is None:
            time.sleep(0.05)
