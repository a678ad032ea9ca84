"""Read-only views for dashboards: many trials at once without their evaluations, and
sweeps without their specs.

``Store.list_trials`` loads every evaluation and artifact of every trial, which is right
for an export and wrong for a page that lists 10,000 trials and refreshes every few
seconds. These reads select only the columns a table or chart needs, count evaluations
with one GROUP BY, and fetch evaluations only for the trials asked for. Likewise
``Store.list_sweeps`` loads every spec (once 50 MB in one row); the server's controller,
polling every second, and the sweeps list read ``sweep_queue`` / ``sweep_rows`` instead.
The CLI's `list`, `status`, `watch` and live table read the same views, plus the few
aggregates below (best trials, failure kinds, planned and run epochs), so what they cost
does not grow with the evaluations a sweep has stored.
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

from sweepctl.storage.errors import StoreError
from sweepctl.storage.models import Evaluation, Sweep, Trial
from sweepctl.storage.records import EvaluationRecord, StageRecord, driven_seconds
from sweepctl.storage.rows import evaluation_record, stage_record
from sweepctl.storage.states import SweepState, TrialState
from sweepctl.storage.sweeps import _trial_counts

__all__ = [
    "EpochStats",
    "QueuedSweep",
    "StageCount",
    "SweepRow",
    "SweepStats",
    "TrialSummary",
    "ViewMixin",
]


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
    owner: str | None = None  # the orchestrator holding the lease, as SweepRecord.owner
    owner_since: datetime | None = None
    lease_expires_at: datetime | None = None
    run_seconds: float = 0.0

    def driven_seconds(self, now: datetime) -> float:
        return driven_seconds(self, now)


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
    # why a finished trial learnt nothing (workers.noise), read out of its metrics in SQL
    degenerate: str | None = None

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
            "degenerate": self.degenerate,
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
    Trial.metrics["degenerate"].as_string(),
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


@dataclass(frozen=True)
class EpochStats:
    """How far a sweep's trials got, in aggregates: what the live table's `3/5` and the
    pruning savings need, without reading one evaluation row."""

    longest_completed: int | None  # most evaluations of a COMPLETED trial; None: none yet
    # (the stored training.num_train_epochs, evaluations, trials) of the PRUNED trials
    pruned: list[tuple[Any, int, int]]


# The trial's own epoch budget as stored; replayed trials have none (JSON null).
_PLANNED_EPOCHS = Trial.config[("training", "num_train_epochs")]


class ViewMixin:
    """Dashboard reads of ``storage.Store``."""

    _read_session: sessionmaker[Session]

    if TYPE_CHECKING:

        @property
        def url(self) -> str: ...

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
        grouped = (
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
            grouped = grouped.where(Evaluation.trial_id.in_(list(trial_ids)))
        counts = grouped.subquery()
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
        running = select(Trial.number).where(sweep, Trial.state == TrialState.RUNNING)
        with self._errors(), self._read_session.begin() as session:
            return SweepStats(
                completed=[(n, i, v) for n, i, v in session.execute(completed) if v is not None],
                running=sorted(session.scalars(running)),
                by_stage=_stage_counts(session, sweep_id),
            )

    def stage_counts(self, sweep_id: int) -> list[StageCount]:
        """``SweepStats.by_stage`` alone: `sweepctl status` needs the counts, not the
        (number, id, objective) of every completed trial."""
        with self._errors(), self._read_session.begin() as session:
            return _stage_counts(session, sweep_id)

    def ranked_trials(self, sweep_id: int, maximize: bool, top: int) -> list[TrialSummary]:
        """The `top` best COMPLETED trials, best first; the earlier trial wins a tie (the
        rule of `best_trial_id`), so the ranking is stable across reads."""
        if top <= 0:
            return []
        best = Trial.objective.desc() if maximize else Trial.objective.asc()
        query = (
            select(Trial.id)
            .where(
                Trial.sweep_id == sweep_id,
                Trial.state == TrialState.COMPLETED,
                Trial.objective.is_not(None),
            )
            .order_by(best, Trial.number)
            .limit(top)
        )
        with self._errors(), self._read_session.begin() as session:
            ids = list(session.scalars(query))
        rows = {row.id: row for row in self.trial_summaries(sweep_id, trial_ids=ids)}
        return [rows[trial_id] for trial_id in ids if trial_id in rows]

    def last_trials(self, sweep_id: int, limit: int | None = None) -> list[TrialSummary]:
        """The `limit` highest-numbered trials (all when None), in number order: a live
        table that shows the newest 30 reads 30 rows, not the sweep."""
        if limit is None:
            return self.trial_summaries(sweep_id)
        query = (
            select(Trial.id)
            .where(Trial.sweep_id == sweep_id)
            .order_by(Trial.number.desc())
            .limit(max(limit, 0))
        )
        with self._errors(), self._read_session.begin() as session:
            ids = list(session.scalars(query))
        return self.trial_summaries(sweep_id, trial_ids=ids) if ids else []

    def planned_epochs(self, trial_ids: Sequence[int]) -> dict[int, Any]:
        """Each trial's stored ``training.num_train_epochs`` (None when it has none), read
        out of the config column in SQL rather than loading whole configs."""
        if not trial_ids:
            return {}
        query = select(Trial.id, _PLANNED_EPOCHS).where(Trial.id.in_(list(trial_ids)))
        with self._errors(), self._read_session.begin() as session:
            return {trial_id: planned for trial_id, planned in session.execute(query)}

    def epoch_stats(self, sweep_id: int) -> EpochStats:
        """Two GROUP BY queries: the longest COMPLETED run and the PRUNED trials grouped
        by (planned epochs, epochs run); a few rows whatever the sweep's size."""
        per_trial = _evaluation_counts(sweep_id)
        ran = func.coalesce(per_trial.c.n, 0)

        def of_state(state: TrialState, *columns: Any) -> Any:
            return (
                select(*columns)
                .select_from(Trial)
                .outerjoin(per_trial, per_trial.c.trial_id == Trial.id)
                .where(Trial.sweep_id == sweep_id, Trial.state == state)
            )

        longest = of_state(TrialState.COMPLETED, func.max(ran))
        pruned = of_state(
            TrialState.PRUNED, _PLANNED_EPOCHS.label("planned"), ran.label("ran")
        ).subquery()
        grouped = select(pruned.c.planned, pruned.c.ran, func.count()).group_by(
            pruned.c.planned, pruned.c.ran
        )
        with self._errors(), self._read_session.begin() as session:
            most = session.scalar(longest)
            rows = [(planned, int(n), int(count)) for planned, n, count in session.execute(grouped)]
        return EpochStats(int(most) if most is not None else None, rows)

    def failure_kinds(self, sweep_id: int) -> dict[str | None, dict[str, int]]:
        """FAILED trials per stage per failure kind (stage None: single trials)."""
        query = (
            select(Trial.stage, Trial.failure_kind, func.count())
            .where(Trial.sweep_id == sweep_id, Trial.failure_kind.is_not(None))
            .group_by(Trial.stage, Trial.failure_kind)
        )
        kinds: dict[str | None, dict[str, int]] = defaultdict(dict)
        with self._errors(), self._read_session.begin() as session:
            for stage, kind, count in session.execute(query):
                kinds[stage][str(kind)] = int(count)
        return dict(kinds)

    def best_objectives(self) -> dict[int, tuple[float, float]]:
        """(lowest, highest) COMPLETED objective per sweep: the `Best` column of `sweepctl
        list` is one of them, whichever the sweep's direction says."""
        query = (
            select(Trial.sweep_id, func.min(Trial.objective), func.max(Trial.objective))
            .where(Trial.state == TrialState.COMPLETED, Trial.objective.is_not(None))
            .group_by(Trial.sweep_id)
        )
        with self._errors(), self._read_session.begin() as session:
            rows = session.execute(query).tuples()
            return {i: (float(low or 0.0), float(high or 0.0)) for i, low, high in rows}

    def sweep_objectives(self, sweep_ids: Sequence[int] | None = None) -> dict[int, Any]:
        """The spec's `objective:` section per sweep (None when absent), extracted in SQL:
        a list of sweeps must not read every stored spec to learn each one's metric."""
        query = select(Sweep.id, Sweep.spec["objective"])
        if sweep_ids is not None:
            query = query.where(Sweep.id.in_(list(sweep_ids)))
        with self._errors(), self._read_session.begin() as session:
            return {sweep_id: objective for sweep_id, objective in session.execute(query)}

    def sweep_id(self, name: str) -> int | None:
        """The id behind a name, None for an unknown sweep; nothing else is read."""
        with self._errors(), self._read_session.begin() as session:
            return session.scalar(select(Sweep.id).where(Sweep.name == name))

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

    def sweep_row(self, name: str) -> SweepRow:
        """One sweep as ``get_sweep`` reads it, less the spec: `status` and `watch`, which
        re-read it every interval, never load a stored spec."""
        query = (
            select(Sweep)
            .where(Sweep.name == name)
            .options(selectinload(Sweep.stages), defer(Sweep.spec, raiseload=True))
        )
        with self._errors(), self._read_session.begin() as session:
            sweep = session.scalars(query).one_or_none()
            if sweep is None:
                raise StoreError(f"sweep {name!r} not found in {self.url}")
            counts = _trial_counts(session, [sweep.id])
            return _sweep_row(sweep, counts.get(sweep.id, {}))

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


def _stage_counts(session: Session, sweep_id: int) -> list[StageCount]:
    query = (
        select(
            Trial.stage,
            Trial.state,
            func.count(),
            func.min(Trial.started_at),
            func.max(Trial.finished_at),
        )
        .where(Trial.sweep_id == sweep_id)
        .group_by(Trial.stage, Trial.state)
    )
    return [
        StageCount(stage, state, int(n), first, last)
        for stage, state, n, first, last in session.execute(query)
    ]


def _evaluation_counts(sweep_id: int) -> Any:
    """Evaluations per trial of one sweep, as a subquery to join trials to."""
    return (
        select(Evaluation.trial_id, func.count().label("n"))
        .join(Trial, Trial.id == Evaluation.trial_id)
        .where(Trial.sweep_id == sweep_id)
        .group_by(Evaluation.trial_id)
        .subquery()
    )


def _summary(row: Any) -> TrialSummary:
    *fields, n, last_epoch, last_evaluation_at = row
    (id_, number, optuna_number, stage, state, params, objective, error, *stamps, flag) = fields
    created, started, done = stamps
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
        degenerate=flag,
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
        owner=sweep.owner,
        owner_since=sweep.owner_since,
        lease_expires_at=sweep.lease_expires_at,
        run_seconds=float(sweep.run_seconds or 0.0),
    )
