"""Sweep and stage half of the Store: creation, lifecycle and the status reads.

A mixin rather than a second class so callers keep one ``Store`` object (one
engine, one connection pool) while store.py stays about trials. The rules are
the Store's: one short transaction per method, state changes only through
``storage.states.check_sweep_transition``, conditional UPDATEs so a concurrent
change is refused rather than overwritten.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from sweepctl.storage.errors import StoreError, SweepExistsError, first_line
from sweepctl.storage.jsonsafe import sanitize_json
from sweepctl.storage.models import Stage, Sweep, Trial, utcnow
from sweepctl.storage.records import SweepRecord
from sweepctl.storage.rows import changed_rows, sweep_record
from sweepctl.storage.states import (
    StateTransitionError,
    SweepState,
    TrialState,
    check_sweep_transition,
)

__all__ = ["SweepMixin"]

# Concurrent creators of one new sweep collide on its unique name; the loser
# retries once and then sees the winner's stages (SweepExistsError).
_CREATE_ATTEMPTS = 2
_MAX_STAGE_NAME = 100
_MAX_STRATEGY = 20


def _validated_stages(sweep: str, stages: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """Checked before the database sees them, so both backends refuse identically
    (SQLite would silently store an over-long strategy that PostgreSQL rejects)."""
    if not stages:
        raise ValueError(
            f"sweep {sweep!r}: at least one stage is needed "
            "(a sweep without stages cannot be told from one made by `sweepctl trial`)"
        )
    result = [(str(name), str(strategy)) for name, strategy in stages]
    names = [name for name, _ in result]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"sweep {sweep!r}: duplicate stage names {duplicates}")
    for name, strategy in result:
        if not name or len(name) > _MAX_STAGE_NAME:
            raise ValueError(f"sweep {sweep!r}: stage name must be 1-100 characters: {name!r}")
        if not strategy or len(strategy) > _MAX_STRATEGY:
            raise ValueError(
                f"sweep {sweep!r}: stage {name!r} strategy must be 1-20 characters: {strategy!r}"
            )
    return result


def _trial_counts(
    session: Session, sweep_ids: Iterable[int] | None = None
) -> dict[int, dict[TrialState, int]]:
    """Trials per state per sweep in one GROUP BY; None means every sweep."""
    query = select(Trial.sweep_id, Trial.state, func.count()).group_by(Trial.sweep_id, Trial.state)
    if sweep_ids is not None:
        query = query.where(Trial.sweep_id.in_(list(sweep_ids)))
    counts: dict[int, dict[TrialState, int]] = defaultdict(dict)
    for sweep_id, state, count in session.execute(query):
        counts[sweep_id][state] = int(count)
    return counts


class SweepMixin:
    """Sweep/stage methods of ``storage.Store``; relies on the attributes declared here."""

    _session: sessionmaker[Session]
    _read_session: sessionmaker[Session]

    if TYPE_CHECKING:

        @property
        def url(self) -> str: ...

        def _errors(self, action: str = ...) -> AbstractContextManager[None]: ...

    def create_sweep(
        self,
        name: str,
        spec: dict[str, Any],
        stages: Sequence[tuple[str, str]],
        controller: str | None = None,
    ) -> int:
        """Create a PENDING sweep with PENDING ``(name, strategy)`` stages, positioned in
        list order; return its id. ``controller="server"`` queues it for ``sweepctl serve``.

        A sweep that already has stages is refused with SweepExistsError: running it
        again would mix two runs' trials. A sweep without stages was made by single
        ``sweepctl trial`` runs; it is adopted (stages attached, spec replaced,
        trials kept) so those runs count towards the sweep.
        """
        rows = _validated_stages(name, stages)
        clean_spec = sanitize_json(spec)
        for attempt in range(1, _CREATE_ATTEMPTS + 1):
            try:
                with self._errors(), self._session.begin() as session:
                    sweep_id = self._sweep_for_stages(session, name, clean_spec, controller)
                    session.add_all(
                        Stage(sweep_id=sweep_id, position=position, name=stage, strategy=kind)
                        for position, (stage, kind) in enumerate(rows)
                    )
                    session.flush()
                    return sweep_id
            except IntegrityError as exc:
                if attempt == _CREATE_ATTEMPTS:
                    raise StoreError(
                        f"cannot create sweep {name!r} in {self.url}: {first_line(exc.orig or exc)}"
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _sweep_for_stages(
        self, session: Session, name: str, spec: dict[str, Any], controller: str | None
    ) -> int:
        """The row lock makes a concurrent adopter wait and then see our stages."""
        query = select(Sweep).where(Sweep.name == name).with_for_update()
        sweep = session.scalars(query).one_or_none()
        if sweep is None:
            sweep = Sweep(name=name, spec=spec, controller=controller)
            session.add(sweep)
            session.flush()
            return sweep.id
        has_stages = session.scalar(select(Stage.id).where(Stage.sweep_id == sweep.id).limit(1))
        if has_stages is not None:
            raise SweepExistsError(
                f"sweep {name!r} already exists in {self.url}; "
                f"use 'sweepctl resume {name}' or another name"
            )
        sweep.spec = spec
        sweep.controller = controller
        sweep.updated_at = utcnow()
        return sweep.id

    def set_sweep_state(self, name: str, state: SweepState, error: str | None = None) -> None:
        """The only way a sweep's state changes (see SweepState for the rules). ``error``
        is kept with a FAILED or STOPPED sweep and cleared by any other state (a resume)."""
        state = SweepState(state)
        query = select(Sweep.id, Sweep.state).where(Sweep.name == name).with_for_update()
        with self._errors(), self._session.begin() as session:
            row = session.execute(query).one_or_none()
            if row is None:
                raise StoreError(f"sweep {name!r} not found in {self.url}")
            sweep_id, current = row
            label = f"sweep {name!r}"
            check_sweep_transition(label, current, state)
            # Conditional on the state we checked: correct even without row locks.
            statement = (
                update(Sweep)
                .where(Sweep.id == sweep_id, Sweep.state == current)
                .values(state=state, error=error, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            _expect_one_row(changed_rows(session, statement), label, current, state)

    def set_sweep_budget(self, name: str, budget: dict[str, Any]) -> None:
        """`sweepctl resume --budget`: the stored spec's `budget` replaced, nothing else,
        so the resumed sweep and every later reader see the limits it now runs under."""
        query = select(Sweep.id, Sweep.spec).where(Sweep.name == name).with_for_update()
        with self._errors(), self._session.begin() as session:
            row = session.execute(query).one_or_none()
            if row is None:
                raise StoreError(f"sweep {name!r} not found in {self.url}")
            spec = {**row.spec, "budget": budget}
            session.execute(
                update(Sweep)
                .where(Sweep.id == row.id)
                .values(spec=spec, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )

    def set_stage_state(
        self,
        sweep: str,
        stage: str,
        state: SweepState,
        summary: dict[str, Any] | None = None,
    ) -> None:
        """The only way a stage's state changes; ``summary`` (e.g. the OFAT ranking) is
        written in the same transaction, and omitting it keeps the stored one."""
        state = SweepState(state)
        values: dict[str, Any] = {"state": state}
        if summary is not None:
            values["summary"] = sanitize_json(summary)  # before the transaction: may raise
        query = (
            select(Stage.id, Stage.state)
            .join(Stage.sweep)
            .where(Sweep.name == sweep, Stage.name == stage)
            .with_for_update(of=Stage)
        )
        label = f"stage {stage!r} of sweep {sweep!r}"
        with self._errors(), self._session.begin() as session:
            row = session.execute(query).one_or_none()
            if row is None:
                raise self._stage_not_found(session, sweep, stage)
            stage_id, current = row
            check_sweep_transition(label, current, state)
            statement = (
                update(Stage)
                .where(Stage.id == stage_id, Stage.state == current)
                .values(updated_at=utcnow(), **values)
                .execution_options(synchronize_session=False)
            )
            _expect_one_row(changed_rows(session, statement), label, current, state)

    def _stage_not_found(self, session: Session, sweep: str, stage: str) -> StoreError:
        """Say which of the two names is wrong."""
        if session.scalar(select(Sweep.id).where(Sweep.name == sweep)) is None:
            return StoreError(f"sweep {sweep!r} not found in {self.url}")
        return StoreError(f"stage {stage!r} not found in sweep {sweep!r} in {self.url}")

    def get_sweep(self, name: str) -> SweepRecord:
        return self._one_sweep(Sweep.name == name, f"sweep {name!r}")

    def get_sweep_by_id(self, sweep_id: int) -> SweepRecord:
        """For URLs: ids are safe in a path where any sweep name may not be."""
        return self._one_sweep(Sweep.id == sweep_id, f"sweep {sweep_id}")

    def _one_sweep(self, where: Any, label: str) -> SweepRecord:
        query = select(Sweep).where(where).options(selectinload(Sweep.stages))
        with self._errors(), self._read_session.begin() as session:
            sweep = session.scalars(query).one_or_none()
            if sweep is None:
                raise StoreError(f"{label} not found in {self.url}")
            counts = _trial_counts(session, [sweep.id])
            return sweep_record(sweep, counts.get(sweep.id, {}))

    def list_sweeps(self) -> list[SweepRecord]:
        """Oldest first (id breaks ties between sweeps created in the same instant)."""
        query = (
            select(Sweep).order_by(Sweep.created_at, Sweep.id).options(selectinload(Sweep.stages))
        )
        with self._errors(), self._read_session.begin() as session:
            sweeps = list(session.scalars(query))
            counts = _trial_counts(session)
            return [sweep_record(sweep, counts.get(sweep.id, {})) for sweep in sweeps]


def _expect_one_row(rowcount: int, label: str, current: SweepState, new: SweepState) -> None:
    if rowcount != 1:
        raise StateTransitionError(
            f"{label} changed state concurrently; {current.name} -> {new.name} refused"
        )
