"""Conversions between ORM rows and the plain records callers see, and the row count of
a conditional write.

Shared by the trial and sweep halves of the Store; keeping them here keeps both
halves free of import cycles.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Delete, Update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session, joinedload, selectinload

from sweepctl.storage.jsonsafe import sanitize_float, sanitize_json
from sweepctl.storage.models import Evaluation, Stage, Sweep, Trial
from sweepctl.storage.records import (
    ArtifactRecord,
    EvaluationRecord,
    StageRecord,
    SweepRecord,
    TrialRecord,
)
from sweepctl.storage.states import TrialState

EVALUATION_FLOATS = (
    "epoch",
    "training_loss",
    "eval_loss",
    "accuracy",
    "f1",
    "precision",
    "recall",
    "learning_rate",
    "grad_norm",
)

TRIAL_LOAD_OPTIONS = (
    joinedload(Trial.sweep),
    selectinload(Trial.evaluations),
    selectinload(Trial.artifacts),
)


def evaluation_row(trial_id: int, record: EvaluationRecord) -> Evaluation:
    floats = {name: sanitize_float(getattr(record, name)) for name in EVALUATION_FLOATS}
    if floats["epoch"] is None:
        raise ValueError(f"trial {trial_id}: evaluation epoch must be finite, got {record.epoch}")
    return Evaluation(
        trial_id=trial_id, step=int(record.step), metrics=sanitize_json(record.metrics), **floats
    )


def evaluation_record(row: Evaluation) -> EvaluationRecord:
    floats = {name: getattr(row, name) for name in EVALUATION_FLOATS}
    return EvaluationRecord(step=row.step, metrics=row.metrics, **floats)


def trial_record(trial: Trial) -> TrialRecord:
    """Expects TRIAL_LOAD_OPTIONS to have been applied (no lazy loads after the session)."""
    return TrialRecord(
        id=trial.id,
        sweep_name=trial.sweep.name,
        number=trial.number,
        stage=trial.stage,
        state=trial.state,
        params=trial.params,
        config=trial.config,
        objective=trial.objective,
        metrics=trial.metrics,
        resources=trial.resources,
        error=trial.error,
        traceback=trial.traceback,
        created_at=trial.created_at,
        started_at=trial.started_at,
        finished_at=trial.finished_at,
        evaluations=[evaluation_record(row) for row in trial.evaluations],
        artifacts=[ArtifactRecord(row.kind, row.uri, row.size_bytes) for row in trial.artifacts],
        optuna_trial_number=trial.optuna_trial_number,
        failure_kind=trial.failure_kind,
        attempt=trial.attempt,
        retry_of=trial.retry_of,
        heartbeat_at=trial.heartbeat_at,
        worker=trial.worker,
    )


def stage_record(stage: Stage) -> StageRecord:
    return StageRecord(stage.name, stage.position, stage.strategy, stage.state, stage.summary)


def sweep_record(sweep: Sweep, counts: Mapping[TrialState, int]) -> SweepRecord:
    """Expects ``Sweep.stages`` loaded; counts may omit states that have no trials."""
    return SweepRecord(
        id=sweep.id,
        name=sweep.name,
        state=sweep.state,
        spec=sweep.spec,
        created_at=sweep.created_at,
        updated_at=sweep.updated_at,
        stages=[stage_record(stage) for stage in sweep.stages],
        trial_counts={state.name: int(counts.get(state, 0)) for state in TrialState},
        controller=sweep.controller,
        error=sweep.error,
        owner=sweep.owner,
        owner_since=sweep.owner_since,
        lease_expires_at=sweep.lease_expires_at,
        run_seconds=float(sweep.run_seconds or 0.0),
    )


def changed_rows(session: Session, statement: Update | Delete) -> int:
    """How many rows an UPDATE or DELETE matched: the conditional writes count on it.

    `Session.execute` is typed as returning a plain `Result`; for DML it is a
    `CursorResult`, the only kind that carries `rowcount`."""
    result = session.execute(statement)
    if not isinstance(result, CursorResult):
        raise TypeError(f"expected a CursorResult from {statement!r}, got {type(result)}")
    return result.rowcount
