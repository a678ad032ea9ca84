"""What a sweep has used so far, read from its trial rows: for `budget` (spec.overnight).

Why from the rows and not a counter: the record is the one thing every process agrees on.
`status` in another terminal, the dashboard and the orchestrator that enforces the budget
read the same numbers, and a resumed sweep needs no counter restored.
"""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sweepctl.storage.models import Sweep, Trial, utcnow
from sweepctl.storage.states import TrialState

__all__ = ["TrialUsage", "UsageMixin"]

_SUCCESS = (TrialState.COMPLETED, TrialState.PRUNED)


@dataclass(frozen=True)
class TrialUsage:
    """`trial_seconds`: wall time of every trial that started, running ones up to now.
    `failures_total`: configurations whose last try FAILED and was not retried (given up
    after its retries, or failed in a way no retry fixes); `failures_in_a_row`: those
    that ended after the sweep's last success."""

    trial_seconds: float
    failures_total: int
    failures_in_a_row: int


class UsageMixin:
    _read_session: sessionmaker[Session]

    if TYPE_CHECKING:

        def _errors(self, action: str = ...) -> AbstractContextManager[None]: ...

    def trial_usage(self, sweep: str, retry_queued: Collection[int] = ()) -> TrialUsage:
        """One statement of six small columns per trial, whatever the metrics hold.
        `retry_queued`: Optuna numbers of failed tries whose retry the orchestrator has
        queued but not yet written; they are not failures of their configuration."""
        query = (
            select(
                Trial.id,
                Trial.optuna_trial_number,
                Trial.state,
                Trial.retry_of,
                Trial.started_at,
                Trial.finished_at,
            )
            .join(Trial.sweep)
            .where(Sweep.name == sweep)
        )
        with self._errors(), self._read_session.begin() as session:
            rows = [_Row(*row) for row in session.execute(query)]
        return _usage(rows, set(retry_queued), utcnow())


@dataclass(frozen=True)
class _Row:
    id: int
    number: int | None
    state: TrialState
    retry_of: int | None
    started: datetime | None
    finished: datetime | None


def _usage(rows: list[_Row], retry_queued: set[int], now: datetime) -> TrialUsage:
    retried = {row.retry_of for row in rows if row.retry_of is not None}
    seconds = sum(((r.finished or now) - r.started).total_seconds() for r in rows if r.started)
    successes = [r.finished for r in rows if r.state in _SUCCESS and r.finished]
    last_success = max(successes, default=None)
    final_failures = [
        row.finished
        for row in rows
        if row.state is TrialState.FAILED and row.id not in retried
        and row.number not in retry_queued
    ]  # fmt: skip
    in_a_row = sum(
        1 for end in final_failures if last_success is None or (end and end > last_success)
    )
    return TrialUsage(max(0.0, seconds), len(final_failures), in_a_row)
