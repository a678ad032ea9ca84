"""Who drives a sweep, and whether its trials are still alive: the lease and heartbeats.

Why a lease: two orchestrators on one sweep (a `resume` beside a running `launch`, or
beside the server that owns the sweep) each train the same points and fail each other's
live trials. The sweep row names one owner; the owner renews its lease with its heartbeat
and anyone else is refused with that owner's name. An owner that stops renewing (killed,
stopped, its machine gone) loses the lease when it expires, and one on this host whose
process is gone loses it at once, so `resume` right after a crash works without waiting.

Why heartbeats: a worker stopped by SIGSTOP, deadlocked in a collective or hung on a
filesystem never returns and never fails; only a beat that stops arriving tells. Workers
beat into their trial row; orchestrators compare the beat's age with 3 intervals.

Times are the writer's UTC clock; hosts sharing a sweep need clocks within a few seconds.
"""

from __future__ import annotations

import os
import socket
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from sweepctl.storage.errors import LeaseHeldError, StoreError
from sweepctl.storage.models import Sweep, Trial, utcnow
from sweepctl.storage.rows import changed_rows
from sweepctl.storage.states import TrialState

__all__ = ["LivenessMixin", "TrialPulse", "lease_holder", "owner_name"]

_UNFINISHED = (TrialState.PENDING, TrialState.RUNNING)


def owner_name(role: str) -> str:
    """`role@host:pid`, e.g. `launch@gpu-box:4242`: enough to find and judge the owner."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}"


def owner_place(owner: str) -> tuple[str, int | None]:
    """`role@host:pid` (an `owner_name`) -> (host, pid); pid None when it is not one."""
    _, _, place = owner.partition("@")
    host, _, pid_text = place.rpartition(":")
    return host, int(pid_text) if pid_text.isdigit() else None


def _owner_is_gone(owner: str) -> bool:
    """True only when the owner ran on this host and its process no longer exists (or is
    a zombie). An owner elsewhere is judged by its lease's expiry alone."""
    host, pid = owner_place(owner)
    if host != socket.gethostname() or pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


@dataclass(frozen=True)
class TrialPulse:
    """What an orchestrator needs to judge an unfinished trial."""

    id: int
    optuna_trial_number: int | None
    state: TrialState
    created_at: datetime
    started_at: datetime | None
    heartbeat_at: datetime | None


class LivenessMixin:
    """Lease and heartbeat methods of ``storage.Store``."""

    _session: sessionmaker[Session]
    _read_session: sessionmaker[Session]

    if TYPE_CHECKING:

        @property
        def url(self) -> str: ...

        def _errors(self, action: str = ...) -> AbstractContextManager[None]: ...

    def acquire_lease(self, sweep: str, owner: str, ttl_s: float) -> None:
        """Take the sweep for ``owner`` for ``ttl_s`` seconds, or raise LeaseHeldError
        naming the live owner. Re-acquiring one's own lease renews it."""
        query = (
            select(Sweep.id, Sweep.owner, Sweep.owner_since, Sweep.lease_expires_at)
            .where(Sweep.name == sweep)
            .with_for_update()
        )
        with self._errors(), self._session.begin() as session:
            row = session.execute(query).one_or_none()
            if row is None:
                raise StoreError(f"sweep {sweep!r} not found in {self.url}")
            sweep_id, current, since, expires = row
            now = utcnow()
            refusal = _refusal(sweep, current, since, expires) if current != owner else None
            if refusal is not None:
                raise LeaseHeldError(refusal)
            values: dict[str, object] = {
                "owner": owner,
                "lease_expires_at": now + timedelta(seconds=ttl_s),
            }
            if current != owner:
                values["owner_since"] = now
                if current is not None and since is not None and expires is not None:
                    # the dead holder's time, up to its last renewal (one ttl before expiry)
                    ran = (min(now, expires) - since).total_seconds() - ttl_s
                    values["run_seconds"] = Sweep.run_seconds + max(0.0, ran)
            session.execute(update(Sweep).where(Sweep.id == sweep_id).values(**values))

    def renew_lease(self, sweep: str, owner: str, ttl_s: float) -> bool:
        """False when the lease is no longer ours (expired and taken over): stop driving."""
        statement = (
            update(Sweep)
            .where(Sweep.name == sweep, Sweep.owner == owner)
            .values(lease_expires_at=utcnow() + timedelta(seconds=ttl_s))
            .execution_options(synchronize_session=False)
        )
        with self._errors(), self._session.begin() as session:
            return changed_rows(session, statement) == 1

    def release_lease(self, sweep: str, owner: str) -> None:
        """Let the sweep go, adding the time this owner drove it to `run_seconds`."""
        query = select(Sweep.id, Sweep.owner_since).where(Sweep.name == sweep, Sweep.owner == owner)
        with self._errors(), self._session.begin() as session:
            row = session.execute(query.with_for_update()).one_or_none()
            if row is None:
                return  # taken over meanwhile: the successor charged our time
            ran = (utcnow() - row.owner_since).total_seconds() if row.owner_since else 0.0
            session.execute(
                update(Sweep)
                .where(Sweep.id == row.id)
                .values(
                    owner=None,
                    owner_since=None,
                    lease_expires_at=None,
                    run_seconds=Sweep.run_seconds + max(0.0, ran),
                )
                .execution_options(synchronize_session=False)
            )

    def heartbeat(self, trial_id: int, worker: str | None = None) -> TrialState:
        """Record a beat (and, given one, the `role@host:pid` of the beating process) if
        the trial is still unfinished; return its state, so a worker learns that its trial
        was cancelled or given up and can stop."""
        values: dict[str, object] = {"heartbeat_at": utcnow()}
        if worker is not None:
            values["worker"] = worker
        statement = (
            update(Trial)
            .where(Trial.id == trial_id, Trial.state.in_(_UNFINISHED))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        with self._errors(), self._session.begin() as session:
            session.execute(statement)
            state = session.scalar(select(Trial.state).where(Trial.id == trial_id))
        if state is None:
            raise StoreError(f"trial {trial_id} not found in {self.url}")
        return state

    def trial_pulses(self, sweep: str) -> list[TrialPulse]:
        """Unfinished trials of a sweep with their ages and last beats."""
        query = (
            select(
                Trial.id,
                Trial.optuna_trial_number,
                Trial.state,
                Trial.created_at,
                Trial.started_at,
                Trial.heartbeat_at,
            )
            .join(Trial.sweep)
            .where(Sweep.name == sweep, Trial.state.in_(_UNFINISHED))
            .order_by(Trial.id)
        )
        with self._errors(), self._read_session.begin() as session:
            return [TrialPulse(*row) for row in session.execute(query)]


def lease_holder(sweep: object) -> str | None:
    """The refusal message when a live orchestrator holds the lease of `sweep` (a
    SweepRecord), else None; `acquire_lease` decides the same way under a row lock."""
    owner = getattr(sweep, "owner", None)
    return _refusal(
        str(getattr(sweep, "name", "?")),
        owner,
        getattr(sweep, "owner_since", None),
        getattr(sweep, "lease_expires_at", None),
    )


def _refusal(
    sweep: str, owner: str | None, since: datetime | None, expires: datetime | None
) -> str | None:
    if owner is None or expires is None or expires <= utcnow() or _owner_is_gone(owner):
        return None
    return (
        f"sweep {sweep!r} is driven by {owner} since "
        f"{since.isoformat(timespec='seconds') if since else '?'} "
        f"(lease until {expires.isoformat(timespec='seconds')}); "
        "stop that process or wait for its lease to expire"
    )
