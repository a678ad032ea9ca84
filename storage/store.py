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

from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.orm import Session, sessionmaker

from sweepctl.storage.engine import READ_ONLY_OPTION, create_store_engine
from sweepctl.storage.errors import StoreError, first_line
from sweepctl.storage.jsonsafe import sanitize_float, sanitize_json
from sweepctl.storage.liveness import LivenessMixin
from sweepctl.storage.models import VERSION_TABLE, Artifact, Base, Sweep, Trial, utcnow
from sweepctl.storage.outcome_views import OutcomeViewMixin
from sweepctl.storage.records import EvaluationRecord, TrialRecord
from sweepctl.storage.revisions import linear_head_revision
from sweepctl.storage.rows import (
    TRIAL_LOAD_OPTIONS,
    changed_rows,
    evaluation_row,
    trial_record,
)
from sweepctl.storage.states import FailureKind, StateTransitionError, TrialState, check_transition
from sweepctl.storage.sweeps import SweepMixin
from sweepctl.storage.urls import normalize_db_url, redact_url
from sweepctl.storage.usage import UsageMixin
from sweepctl.storage.views import ViewMixin

__all__ = ["Store", "StoreError"]

# Concurrent creators of the same new sweep collide on its unique name; the loser
# retries and then sees the winner's row.
_CREATE_ATTEMPTS = 3
# Trials an interrupted orchestrator may have left behind.
_UNFINISHED = (TrialState.PENDING, TrialState.RUNNING)


def _transition_values(
    state: TrialState,
    *,
    error: str | None = None,
    traceback: str | None = None,
    objective: float | None = None,
    metrics: dict[str, Any] | None = None,
    resources: dict[str, Any] | None = None,
    failure_kind: FailureKind | str | None = None,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Only the fields the caller supplied, so a transition never erases earlier results.
    A FAILED trial always has a kind: ``error`` unless the caller knows better."""
    values: dict[str, Any] = {"state": state}
    now = utcnow()
    if state is TrialState.RUNNING:
        values["started_at"] = now
        values["heartbeat_at"] = now
    if state.is_finished:
        values["finished_at"] = now
    if state is TrialState.FAILED:
        failure_kind = FailureKind(failure_kind or FailureKind.ERROR)
    elif failure_kind is not None:
        raise ValueError(f"failure_kind applies to FAILED trials only, not {state.name}")
    optional = {
        "error": error,
        "traceback": traceback,
        "objective": sanitize_float(objective),
        "metrics": sanitize_json(metrics) if metrics is not None else None,
        "resources": sanitize_json(resources) if resources is not None else None,
        "failure_kind": failure_kind.value if failure_kind is not None else None,
        "config": sanitize_json(config) if config is not None else None,
    }
    values.update({key: value for key, value in optional.items() if value is not None})
    return values


class Store(SweepMixin, ViewMixin, OutcomeViewMixin, LivenessMixin, UsageMixin):
    """Thread-safe within a process (one short session per call); across processes
    SQLite relies on WAL + busy_timeout and PostgreSQL on row locks. Sweep and stage
    methods live in ``storage.sweeps.SweepMixin``, the lease and heartbeats in
    ``storage.liveness.LivenessMixin``, the diagnosis's aggregates in
    ``storage.outcome_views.OutcomeViewMixin``.

    ``read_only=True`` (status, list, show, export) never migrates or writes, and opens a
    SQLite file that this process cannot write (a read-only copy, a read-only mount)
    through SQLite's read-only mode, so looking at a sweep never needs write access."""

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        self._url = normalize_db_url(url)
        self.read_only = read_only
        try:
            self._engine = create_store_engine(self._url, read_only=read_only)
        except (ArgumentError, NoSuchModuleError) as exc:
            raise StoreError(f"invalid database URL {self.url}: {first_line(exc)}") from exc
        except ImportError as exc:
            raise StoreError(
                f"database URL {self.url}: its driver is not installed ({first_line(exc)}); "
                "install it or use sqlite:/// or postgresql:// (psycopg 3)"
            ) from exc
        except OSError as exc:
            raise StoreError(f"database {self.url}: {first_line(exc)}") from exc
        self._session = sessionmaker(bind=self._engine, expire_on_commit=False)
        read_only_engine = self._engine.execution_options(**{READ_ONLY_OPTION: True})
        self._read_session = sessionmaker(bind=read_only_engine)
        try:
            self._check_connection()
            if read_only:
                self._check_schema()
            else:
                from sweepctl.storage import migrate  # Alembic: only a writer may need it

                with self._errors("cannot migrate"):
                    migrate.upgrade(self._engine)
        except BaseException:
            self._engine.dispose()
            raise

    def _check_schema(self) -> None:
        """A read-only store cannot migrate: say so instead of failing on a missing column.
        A store at the head (nearly always) is recognised without Alembic; any other answer
        is Alembic's, with its error message."""
        head = linear_head_revision()
        if head is not None and self._stored_revision() == head:
            return
        from sweepctl.storage import migrate

        with self._errors("cannot read"):
            current = migrate.current_revision(self._engine)
        if current != migrate.head_revision():
            raise StoreError(
                f"database {self.url} is at schema {current or 'none'}, this sweepctl needs "
                f"{migrate.head_revision()}; open it once with write access to upgrade it"
            )

    def _stored_revision(self) -> str | None:
        """The one revision in the version table; None when it is missing or holds several."""
        try:
            with self._read_session.begin() as session:
                rows = session.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
        except DBAPIError:
            return None
        return str(rows[0][0]) if len(rows) == 1 else None

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
            detail = first_line(exc.orig if exc.orig is not None else exc)
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
        *,
        optuna_trial_number: int | None = None,
        attempt: int = 1,
        retry_of: int | None = None,
    ) -> int:
        """Create the sweep on first use (its spec is never overwritten) and a PENDING trial.

        ``optuna_trial_number`` links the trial to the Optuna trial that proposed it;
        it is unique per sweep, so a resumed study cannot register a number twice.
        ``attempt``/``retry_of``: a retried configuration is a new row pointing at the
        trial it retries, so every try stays visible.
        """
        for race in range(1, _CREATE_ATTEMPTS + 1):
            try:
                with self._errors(), self._session.begin() as session:
                    sweep_id = self._sweep_id_for_update(session, sweep_name, spec)
                    if optuna_trial_number is not None:
                        self._check_optuna_number_free(
                            session, sweep_id, sweep_name, optuna_trial_number
                        )
                    trial = Trial(
                        sweep_id=sweep_id,
                        number=self._next_number(session, sweep_id),
                        stage=stage,
                        optuna_trial_number=optuna_trial_number,
                        state=TrialState.PENDING,
                        params=sanitize_json(params),
                        config=sanitize_json(config),
                        attempt=attempt,
                        retry_of=retry_of,
                    )
                    session.add(trial)
                    session.flush()
                    return trial.id
            except IntegrityError as exc:
                if race == _CREATE_ATTEMPTS:
                    raise StoreError(
                        f"cannot create trial in sweep {sweep_name!r} on {self.url}: "
                        f"{first_line(exc.orig or exc)}"
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

    def _check_optuna_number_free(
        self, session: Session, sweep_id: int, sweep_name: str, number: int
    ) -> None:
        """Checked under the sweep lock so a duplicate fails at once with a clear message
        instead of exhausting the retries meant for the sweep-name race."""
        query = select(Trial.id).where(
            Trial.sweep_id == sweep_id, Trial.optuna_trial_number == number
        )
        existing = session.execute(query).scalar_one_or_none()
        if existing is not None:
            raise StoreError(
                f"sweep {sweep_name!r} in {self.url} already has trial {existing} "
                f"for Optuna trial number {number}"
            )

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
        failure_kind: FailureKind | str | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        """The only way a trial's state changes; results are written in the same transaction.
        ``config`` lets a worker adopting an orchestrator's PENDING row fill in the
        resolved configuration as it starts."""
        state = TrialState(state)
        values = _transition_values(
            state,
            error=error,
            traceback=traceback,
            objective=objective,
            metrics=metrics,
            resources=resources,
            failure_kind=failure_kind,
            config=config,
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
            if changed_rows(session, statement) != 1:
                raise StateTransitionError(
                    f"trial {trial_id} changed state concurrently; "
                    f"{current.name} -> {state.name} refused"
                )

    def record_evaluation(self, trial_id: int, record: EvaluationRecord) -> None:
        """Only RUNNING trials accept evaluations, so a finished trial's history is frozen."""
        row = evaluation_row(trial_id, record)
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
            trial = session.get(Trial, trial_id, options=TRIAL_LOAD_OPTIONS)
            if trial is None:
                raise StoreError(f"trial {trial_id} not found in {self.url}")
            return trial_record(trial)

    def list_trials(self, sweep_name: str) -> list[TrialRecord]:
        """Ordered by trial number; an unknown sweep simply has no trials."""
        query = (
            select(Trial)
            .join(Trial.sweep)
            .where(Sweep.name == sweep_name)
            .order_by(Trial.number)
            .options(*TRIAL_LOAD_OPTIONS)
        )
        with self._errors(), self._read_session.begin() as session:
            return [trial_record(trial) for trial in session.scalars(query)]

    def trial_by_optuna_number(self, sweep: str, number: int) -> TrialRecord | None:
        """How a resumed orchestrator finds the stored trial behind an Optuna trial."""
        query = (
            select(Trial)
            .join(Trial.sweep)
            .where(Sweep.name == sweep, Trial.optuna_trial_number == number)
            .options(*TRIAL_LOAD_OPTIONS)
        )
        with self._errors(), self._read_session.begin() as session:
            trial = session.scalars(query).one_or_none()
            return trial_record(trial) if trial is not None else None

    def fail_running_trials(
        self,
        sweep: str,
        reason: str,
        *,
        state: TrialState = TrialState.FAILED,
        failure_kind: FailureKind | None = None,
    ) -> list[int]:
        """End every PENDING/RUNNING trial of ``sweep`` in ``state`` (FAILED, or CANCELLED
        for a cancel or an interrupted orchestrator) with ``reason``; return their ids
        (ascending).

        After an orchestrator crash or a cancel nobody will finish those trials, and
        leaving them RUNNING would make progress counts lie forever. One transaction,
        rows locked, each trial through ``check_transition`` like set_trial_state, so
        a worker finishing a trial concurrently either wins (and it is left alone)
        or loses with StateTransitionError.
        """
        values = _transition_values(state, error=reason, failure_kind=failure_kind)
        query = (
            select(Trial.id, Trial.state)
            .join(Trial.sweep)
            .where(Sweep.name == sweep, Trial.state.in_(_UNFINISHED))
            .order_by(Trial.id)
            .with_for_update(of=Trial)
        )
        with self._errors(), self._session.begin() as session:
            rows = session.execute(query).all()
            for trial_id, current in rows:
                check_transition(trial_id, current, state)
            for current in _UNFINISHED:
                ids = [trial_id for trial_id, row_state in rows if row_state is current]
                if not ids:
                    continue
                # Conditional on the checked state: correct even without row locks.
                statement = (
                    update(Trial)
                    .where(Trial.id.in_(ids), Trial.state == current)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                if changed_rows(session, statement) != len(ids):
                    raise StateTransitionError(
                        f"trials of sweep {sweep!r} changed state concurrently; "
                        f"none were marked {state.name}"
                    )
            return [trial_id for trial_id, _ in rows]

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
