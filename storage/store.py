"""The one gateway to sweepctl's database.

Every read and write of sweepctl tables goes through ``Store`` so the invariants
live in one place: trial state changes follow ``storage.states``, each public
method is one short transaction (nothing half-written on failure), and JSON
payloads are sanitised so SQLite and PostgreSQL answer identically.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    IntegrityError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.orm import Session, joinedload, selectinload, sessionmaker

from storage import migrate
from storage.engine import READ_ONLY_OPTION, create_store_engine
from storage.jsonsafe import sanitize_float, sanitize_json
from storage.models import Artifact, Base, Evaluation, Sweep, Trial, utcnow
from storage.records import ArtifactRecord, EvaluationRecord, TrialRecord
from storage.states import StateTransitionError, TrialState, check_transition
from storage.urls import normalize_db_url, redact_url

__all__ = ["Store", "StoreError"]

# Concurrent creators of the same new sweep collide on its unique name; the loser
# retries and then sees the winner's row.
_CREATE_ATTEMPTS = 3
_EVALUATION_FLOATS = (
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


class StoreError(RuntimeError):
    """Operational failure with a one-line message that names the (redacted) database."""


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _transition_values(
    state: TrialState,
    *,
    error: str | None,
    traceback: str | None,
    objective: float | None,
    metrics: dict[str, Any] | None,
    resources: dict[str, Any] | None,
) -> dict[str, Any]:
    """Only the fields the caller supplied, so a transition never erases earlier results."""
    values: dict[str, Any] = {"state": state}
    if state is TrialState.RUNNING:
        values["started_at"] = utcnow()
    if state.is_finished:
        values["finished_at"] = utcnow()
    optional = {
        "error": error,
        "traceback": traceback,
        "objective": sanitize_float(objective),
        "metrics": sanitize_json(metrics) if metrics is not None else None,
        "resources": sanitize_json(resources) if resources is not None else None,
    }
    values.update({key: value for key, value in optional.items() if value is not None})
    return values


def _evaluation_row(trial_id: int, record: EvaluationRecord) -> Evaluation:
    floats = {name: sanitize_float(getattr(record, name)) for name in _EVALUATION_FLOATS}
    if floats["epoch"] is None:
        raise ValueError(f"trial {trial_id}: evaluation epoch must be finite, got {record.epoch}")
    return Evaluation(
        trial_id=trial_id, step=int(record.step), metrics=sanitize_json(record.metrics), **floats
    )


def _to_record(trial: Trial) -> TrialRecord:
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
        evaluations=[_to_evaluation_record(row) for row in trial.evaluations],
        artifacts=[ArtifactRecord(row.kind, row.uri, row.size_bytes) for row in trial.artifacts],
    )


def _to_evaluation_record(row: Evaluation) -> EvaluationRecord:
    floats = {name: getattr(row, name) for name in _EVALUATION_FLOATS}
    return EvaluationRecord(step=row.step, metrics=row.metrics, **floats)


_TRIAL_LOAD_OPTIONS = (
    joinedload(Trial.sweep),
    selectinload(Trial.evaluations),
    selectinload(Trial.artifacts),
)


class Store:
    """Thread-safe within a process (one short session per call); across processes
    SQLite relies on WAL + busy_timeout and PostgreSQL on row locks."""

    def __init__(self, url: str) -> None:
        self._url = normalize_db_url(url)
        try:
            self._engine = create_store_engine(self._url)
        except (ArgumentError, NoSuchModuleError) as exc:
            raise StoreError(f"invalid database URL {self.url}: {_first_line(exc)}") from exc
        self._session = sessionmaker(bind=self._engine, expire_on_commit=False)
        read_only = self._engine.execution_options(**{READ_ONLY_OPTION: True})
        self._read_session = sessionmaker(bind=read_only)
        try:
            self._check_connection()
            with self._errors("cannot migrate"):
                migrate.upgrade(self._engine)
        except BaseException:
            self._engine.dispose()
            raise

    @property
    def url(self) -> str:
        return redact_url(self._url)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _check_connection(self) -> None:
        with self._errors("cannot connect to"), self._engine.connect():
            pass

    @contextmanager
    def _errors(self, action: str = "database error on") -> Iterator[None]:
        """Driver errors become one readable line; the password never appears."""
        try:
            yield
        except (OperationalError, InterfaceError) as exc:
            detail = _first_line(exc.orig if exc.orig is not None else exc)
            password = make_url(self._url).password
            if password:
                detail = detail.replace(str(password), "***")
            raise StoreError(f"{action} {self.url}: {detail}") from exc

    def _locked_state(self, session: Session, trial_id: int, *, shared: bool = False) -> TrialState:
        """Row lock on PostgreSQL (SQLite already holds the write lock via BEGIN IMMEDIATE)."""
        query = select(Trial.state).where(Trial.id == trial_id).with_for_update(read=shared)
        state = session.execute(query).scalar_one_or_none()
        if state is None:
            raise StoreError(f"trial {trial_id} not found in {self.url}")
        return state

    def create_trial(
        self,
        sweep_name: str,
        spec: dict[str, Any],
        params: dict[str, Any],
        config: dict[str, Any],
        stage: str | None = None,
    ) -> int:
        """Create the sweep on first use (its spec is never overwritten) and a PENDING trial."""
        for attempt in range(1, _CREATE_ATTEMPTS + 1):
            try:
                with self._errors(), self._session.begin() as session:
                    sweep_id = self._sweep_id_for_update(session, sweep_name, spec)
                    trial = Trial(
                        sweep_id=sweep_id,
                        number=self._next_number(session, sweep_id),
                        stage=stage,
                        state=TrialState.PENDING,
                        params=sanitize_json(params),
                        config=sanitize_json(config),
                    )
                    session.add(trial)
                    session.flush()
                    return trial.id
            except IntegrityError as exc:
                if attempt == _CREATE_ATTEMPTS:
                    raise StoreError(
                        f"cannot create trial in sweep {sweep_name!r} on {self.url}: "
                        f"{_first_line(exc.orig or exc)}"
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _sweep_id_for_update(session: Session, name: str, spec: dict[str, Any]) -> int:
        """Locking the sweep row serialises trial numbering per sweep on PostgreSQL."""
        query = select(Sweep.id).where(Sweep.name == name).with_for_update()
        sweep_id = session.execute(query).scalar_one_or_none()
        if sweep_id is not None:
            return sweep_id
        sweep = Sweep(name=name, spec=sanitize_json(spec))
        session.add(sweep)
        session.flush()
        return sweep.id

    @staticmethod
    def _next_number(session: Session, sweep_id: int) -> int:
        query = select(func.coalesce(func.max(Trial.number) + 1, 0)).where(
            Trial.sweep_id == sweep_id
        )
        return int(session.execute(query).scalar_one())

    def set_trial_state(
        self,
        trial_id: int,
        state: TrialState,
        *,
        error: str | None = None,
        traceback: str | None = None,
        objective: float | None = None,
        metrics: dict[str, Any] | None = None,
        resources: dict[str, Any] | None = None,
    ) -> None:
        """The only way a trial's state changes; results are written in the same transaction."""
        state = TrialState(state)
        values = _transition_values(
            state,
            error=error,
            traceback=traceback,
            objective=objective,
            metrics=metrics,
            resources=resources,
        )
        with self._errors(), self._session.begin() as session:
            current = self._locked_state(session, trial_id)
            check_transition(trial_id, current, state)
            # Conditional on the state we checked: correct even without row locks.
            statement = (
                update(Trial)
                .where(Trial.id == trial_id, Trial.state == current)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if session.execute(statement).rowcount != 1:
                raise StateTransitionError(
                    f"trial {trial_id} changed state concurrently; "
                    f"{current.name} -> {state.name} refused"
                )

    def record_evaluation(self, trial_id: int, record: EvaluationRecord) -> None:
        """Only RUNNING trials accept evaluations, so a finished trial's history is frozen."""
        row = _evaluation_row(trial_id, record)
        try:
            with self._errors(), self._session.begin() as session:
                current = self._locked_state(session, trial_id, shared=True)
                if current is not TrialState.RUNNING:
                    raise StateTransitionError(
                        f"trial {trial_id} is {current.name}; "
                        "evaluations can only be recorded while RUNNING"
                    )
                session.add(row)
        except IntegrityError as exc:
            raise StoreError(
                f"trial {trial_id} already has an evaluation at step {record.step}"
            ) from exc

    def add_artifact(
        self, trial_id: int, kind: str, uri: str, size_bytes: int | None = None
    ) -> None:
        with self._errors(), self._session.begin() as session:
            self._locked_state(session, trial_id, shared=True)
            session.add(Artifact(trial_id=trial_id, kind=kind, uri=uri, size_bytes=size_bytes))

    def get_trial(self, trial_id: int) -> TrialRecord:
        with self._errors(), self._read_session.begin() as session:
            trial = session.get(Trial, trial_id, options=_TRIAL_LOAD_OPTIONS)
            if trial is None:
                raise StoreError(f"trial {trial_id} not found in {self.url}")
            return _to_record(trial)

    def list_trials(self, sweep_name: str) -> list[TrialRecord]:
        """Ordered by trial number; an unknown sweep simply has no trials."""
        query = (
            select(Trial)
            .join(Trial.sweep)
            .where(Sweep.name == sweep_name)
            .order_by(Trial.number)
            .options(*_TRIAL_LOAD_OPTIONS)
        )
        with self._errors(), self._read_session.begin() as session:
            return [_to_record(trial) for trial in session.scalars(query)]

    def sweep_names(self) -> list[str]:
        with self._errors(), self._read_session.begin() as session:
            return list(session.scalars(select(Sweep.name).order_by(Sweep.name)))

    def sweep_spec(self, sweep_name: str) -> dict[str, Any]:
        """The spec as stored when the sweep was first created."""
        with self._errors(), self._read_session.begin() as session:
            spec = session.scalar(select(Sweep.spec).where(Sweep.name == sweep_name))
        if spec is None:
            raise StoreError(f"sweep {sweep_name!r} not found in {self.url}")
        return spec

    def count_rows(self) -> dict[str, int]:
        """Rows per sweepctl table, for checks that a failure left nothing half-written."""
        with self._errors(), self._read_session.begin() as session:
            return {
                table.name: int(session.scalar(select(func.count()).select_from(table)) or 0)
                for table in Base.metadata.sorted_tables
            }
