"""Read-only views for dashboards: many trials at once without their evaluations, and
sweeps without their specs.

``Store.list_trials`` loads every evaluation and artifact of every trial, which is right
for an export and wrong for a page that lists 10,000 trials and refreshes every few
seconds. These reads select only the columns a table or chart needs, count evaluations
with one GROUP BY, and fetch evaluations only for the trials asked for. Likewise
``Store.list_sweeps`` loads every spec (once 50 MB in one row); the server's controller,
polling every second, and the sweeps list read ``sweep_queue`` / ``sweep_rows`` instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, defer, selectinload, sessionmaker

from sweepctl.storage.models import Evaluation, Sweep, Trial
from sweepctl.storage.records import EvaluationRecord, StageRecord
from sweepctl.storage.rows import evaluation_record, stage_record
from sweepctl.storage.states import SweepState, TrialState
from sweepctl.storage.sweeps import _trial_counts

__all__ = ["QueuedSweep", "StageCount", "SweepRow", "SweepStats", "TrialSummary", "ViewMixin"]


@dataclass(frozen=True)
class QueuedSweep:
    """A sweep a controller may have to start or resume: no spec, no stages."""

    id: int
    name: str
    state: SweepState
    controller: str | None
    created_at: datetime


@dataclass(frozen=True)
class SweepRow:
    """A sweep as a list shows it: a SweepRecord without the spec."""

    id: int
    name: str
    state: SweepState
    controller: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    stages: list[StageRecord]
    trial_counts: dict[str, int]


@dataclass(frozen=True)
class TrialSummary:
    """One row of a trial table: what it tried, how it ended, how far it got."""

    id: int
    number: int
    optuna_trial_number: int | None
    stage: str | None
    state: TrialState
    params: dict[str, Any]
    objective: float | None
    error: str | None
    evaluations: int
    last_epoch: float | None
    last_evaluation_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "optuna_trial_number": self.optuna_trial_number,
            "stage": self.stage,
            "state": self.state.name,
            "params": self.params,
            "objective": self.objective,
            "error": self.error.splitlines()[0] if self.error else None,
            "evaluations": self.evaluations,
            "last_epoch": self.last_epoch,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "duration_s": self.duration_s,
        }


_SUMMARY_COLUMNS = (
    Trial.id,
    Trial.number,
    Trial.optuna_trial_number,
    Trial.stage,
    Trial.state,
    Trial.params,
    Trial.objective,
    Trial.error,
    Trial.created_at,
    Trial.started_at,
    Trial.finished_at,
)


@dataclass(frozen=True)
class StageCount:
    """Trials of one stage in one state, with when the first started and the last ended."""

    stage: str | None
    state: TrialState
    trials: int
    first_started: datetime | None
    last_finished: datetime | None


@dataclass(frozen=True)
class SweepStats:
    completed: list[tuple[int, int, float]]  # (number, trial id, objective), by number
    running: list[int]  # trial numbers
    by_stage: list[StageCount]

    @property
    def started_at(self) -> datetime | None:
        return min((c.first_started for c in self.by_stage if c.first_started), default=None)


class ViewMixin:
    """Dashboard reads of ``storage.Store``."""

    _read_session: sessionmaker[Session]

    if TYPE_CHECKING:

        def _errors(self, action: str = ...) -> AbstractContextManager[None]: ...

    def trial_summaries(
        self,
        sweep_id: int,
        trial_ids: Sequence[int] | None = None,
        changed_after: datetime | None = None,
    ) -> list[TrialSummary]:
        """Every trial of a sweep by number (or only `trial_ids`, those of this sweep, or
        only those created, started, evaluated or finished after `changed_after`), with
        its evaluation count and last epoch."""
        counts = (
            select(
                Evaluation.trial_id,
                func.count().label("n"),
                func.max(Evaluation.epoch).label("last_epoch"),
                func.max(Evaluation.created_at).label("last_evaluation_at"),
            )
            .join(Trial, Trial.id == Evaluation.trial_id)
            .where(Trial.sweep_id == sweep_id)
            .group_by(Evaluation.trial_id)
        )
        if trial_ids is not None:  # count only their evaluations, not the whole sweep's
            counts = counts.where(Evaluation.trial_id.in_(list(trial_ids)))
        counts = counts.subquery()
        query = (
            select(*_SUMMARY_COLUMNS, counts.c.n, counts.c.last_epoch, counts.c.last_evaluation_at)
            .outerjoin(counts, counts.c.trial_id == Trial.id)
            .where(Trial.sweep_id == sweep_id)
            .order_by(Trial.number)
        )
        if trial_ids is not None:
            query = query.where(Trial.id.in_(list(trial_ids)))
        if changed_after is not None:
            stamps = (Trial.created_at, Trial.started_at, Trial.finished_at)
            recent = [stamp > changed_after for stamp in stamps]
            query = query.where(or_(*recent, counts.c.last_evaluation_at > changed_after))
        with self._errors(), self._read_session.begin() as session:
            return [_summary(row) for row in session.execute(query)]

    def sweep_stats(self, sweep_id: int) -> SweepStats:
        """What a sweep's overview needs, from aggregates: it costs the same whether the
        page then wants every row or only the few that changed."""
        sweep = Trial.sweep_id == sweep_id
        completed = (
            select(Trial.number, Trial.id, Trial.objective)
            .where(sweep, Trial.state == TrialState.COMPLETED, Trial.objective.is_not(None))
            .order_by(Trial.number)
        )
        stages = select(
            Trial.stage,
            Trial.state,
            func.count(),
            func.min(Trial.started_at),
            func.max(Trial.finished_at),
        ).where(sweep)
        running = select(Trial.number).where(sweep, Trial.state == TrialState.RUNNING)
        with self._errors(), self._read_session.begin() as session:
            by_stage = [
                StageCount(stage, state, int(n), first, last)
                for stage, state, n, first, last in session.execute(
                    stages.group_by(Trial.stage, Trial.state)
                )
            ]
            return SweepStats(
                completed=[(n, i, float(v)) for n, i, v in session.execute(completed)],
                running=sorted(session.scalars(running)),
                by_stage=by_stage,
            )

    def sweep_queue(self, controller: str) -> list[QueuedSweep]:
        """PENDING and RUNNING sweeps owned by `controller`, oldest first; no spec column."""
        query = (
            select(Sweep.id, Sweep.name, Sweep.state, Sweep.controller, Sweep.created_at)
            .where(
                Sweep.controller == controller,
                Sweep.state.in_([SweepState.PENDING, SweepState.RUNNING]),
            )
            .order_by(Sweep.created_at, Sweep.id)
        )
        with self._errors(), self._read_session.begin() as session:
            return [QueuedSweep(*row) for row in session.execute(query)]

    def sweep_rows(self) -> list[SweepRow]:
        """Every sweep as ``list_sweeps`` orders them, with stages and trial counts but
        without the spec column (deferred, so it is never read)."""
        query = (
            select(Sweep)
            .order_by(Sweep.created_at, Sweep.id)
            .options(selectinload(Sweep.stages), defer(Sweep.spec, raiseload=True))
        )
        with self._errors(), self._read_session.begin() as session:
            sweeps = list(session.scalars(query))
            counts = _trial_counts(session)
            return [_sweep_row(sweep, counts.get(sweep.id, {})) for sweep in sweeps]

    def evaluations_of(self, trial_ids: Sequence[int]) -> dict[int, list[EvaluationRecord]]:
        """Evaluations of the given trials only, each list in step order."""
        result: dict[int, list[EvaluationRecord]] = defaultdict(list)
        if not trial_ids:
            return result
        query = (
            select(Evaluation)
            .where(Evaluation.trial_id.in_(list(trial_ids)))
            .order_by(Evaluation.trial_id, Evaluation.step)
        )
        with self._errors(), self._read_session.begin() as session:
            for row in session.scalars(query):
                result[row.trial_id].append(evaluation_record(row))
        return result


def _summary(row: Any) -> TrialSummary:
    *fields, n, last_epoch, last_evaluation_at = row
    (id_, number, optuna_number, stage, state, params, objective, error, created, started, done) = (
        fields
    )
    return TrialSummary(
        id=id_,
        number=number,
        optuna_trial_number=optuna_number,
        stage=stage,
        state=state,
        params=params,
        objective=objective,
        error=error,
        evaluations=int(n or 0),
        last_epoch=last_epoch,
        last_evaluation_at=last_evaluation_at,
        created_at=created,
        started_at=started,
        finished_at=done,
    )


def _sweep_row(sweep: Sweep, counts: dict[TrialState, int]) -> SweepRow:
    return SweepRow(
        id=sweep.id,
        name=sweep.name,
        state=sweep.state,
        controller=sweep.controller,
        error=sweep.error,
        created_at=sweep.created_at,
        updated_at=sweep.updated_at,
        stages=[stage_record(stage) for stage in sweep.stages],
        trial_counts={state.name: int(counts.get(state, 0)) for state in TrialState},
    )
