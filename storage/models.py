"""ORM models for sweepctl's own tables.

Optuna keeps its tables (``studies``, ``trials``, ``alembic_version``, ...) in the
same database, so every name here - tables, constraints, indexes, the Alembic
version table - carries the ``sweepctl_`` prefix to make clashes impossible.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from sweepctl.storage.states import SweepState, TrialState

TABLE_PREFIX = "sweepctl_"
VERSION_TABLE = f"{TABLE_PREFIX}alembic_version"
OPTUNA_NUMBER_INDEX = f"ix_{TABLE_PREFIX}trials_sweep_id_optuna_trial_number"

# Deterministic constraint names: Alembic batch mode on SQLite and future
# migrations need to address constraints by name, and the table name in each
# pattern carries the prefix.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on PostgreSQL so payloads are queryable and compact; plain JSON elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _sweep_state_column() -> Mapped[SweepState]:
    # server_default so ALTER TABLE ADD COLUMN can fill rows that predate the column.
    return mapped_column(
        Enum(SweepState, native_enum=False, length=16),
        nullable=False,
        default=SweepState.PENDING,
        server_default=SweepState.PENDING.name,
    )


class UTCDateTime(TypeDecorator[datetime]):
    """SQLite drops tzinfo; this makes every backend hand back aware UTC datetimes."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass a timezone-aware value")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Sweep(Base):
    __tablename__ = f"{TABLE_PREFIX}sweeps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    state: Mapped[SweepState] = _sweep_state_column()
    # "server" when `sweepctl serve` owns it (migration 0003); NULL for a terminal's sweep
    controller: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    # The lease (migration 0004): which orchestrator drives the sweep now ("host pid N"),
    # since when, and until when it holds it unless it renews (storage.lease).
    owner: Mapped[str | None] = mapped_column(String(200))
    owner_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Seconds earlier orchestrators drove it (migration 0006; budget.max_wall_time)
    run_seconds: Mapped[float] = mapped_column(
        Float, nullable=False, default=0.0, server_default="0"
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    trials: Mapped[list[Trial]] = relationship(back_populates="sweep", passive_deletes=True)
    stages: Mapped[list[Stage]] = relationship(
        back_populates="sweep", order_by="Stage.position", passive_deletes=True
    )


class Stage(Base):
    """One step of a multi-stage sweep (e.g. an OFAT scan, then a TPE search around the
    winner); ``summary`` keeps what the next stage needs from it, such as the ranking."""

    __tablename__ = f"{TABLE_PREFIX}stages"
    __table_args__ = (
        UniqueConstraint("sweep_id", "position"),
        UniqueConstraint("sweep_id", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sweep_id: Mapped[int] = mapped_column(
        ForeignKey(f"{TABLE_PREFIX}sweeps.id", ondelete="CASCADE"), nullable=False
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    strategy: Mapped[str] = mapped_column(String(20), nullable=False)
    state: Mapped[SweepState] = _sweep_state_column()
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    sweep: Mapped[Sweep] = relationship(back_populates="stages")


class Trial(Base):
    __tablename__ = f"{TABLE_PREFIX}trials"
    __table_args__ = (
        UniqueConstraint("sweep_id", "number"),
        # A unique INDEX rather than a constraint: SQLite can add an index in place,
        # but a constraint means rebuilding the table (see migration 0002). NULLs
        # never collide on either backend, so trials outside Optuna are unaffected.
        Index(OPTUNA_NUMBER_INDEX, "sweep_id", "optuna_trial_number", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sweep_id: Mapped[int] = mapped_column(
        ForeignKey(f"{TABLE_PREFIX}sweeps.id", ondelete="CASCADE"), nullable=False, index=True
    )
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    optuna_trial_number: Mapped[int | None] = mapped_column(Integer)
    stage: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[TrialState] = mapped_column(
        Enum(TrialState, native_enum=False, length=16), nullable=False, index=True
    )
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    objective: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    resources: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    # Migration 0004: why a FAILED trial failed (storage.states.FailureKind), which try of
    # its configuration this is (1-based), the trial it retries, and the worker's last beat.
    failure_kind: Mapped[str | None] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")
    retry_of: Mapped[int | None] = mapped_column(Integer)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Migration 0005: the process running the trial, `role@host:pid`, from its first beat.
    worker: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    sweep: Mapped[Sweep] = relationship(back_populates="trials")
    evaluations: Mapped[list[Evaluation]] = relationship(
        back_populates="trial", order_by="Evaluation.step", passive_deletes=True
    )
    artifacts: Mapped[list[Artifact]] = relationship(
        back_populates="trial", order_by="Artifact.id", passive_deletes=True
    )


class Evaluation(Base):
    __tablename__ = f"{TABLE_PREFIX}evaluations"
    __table_args__ = (UniqueConstraint("trial_id", "step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(
        ForeignKey(f"{TABLE_PREFIX}trials.id", ondelete="CASCADE"), nullable=False, index=True
    )
    epoch: Mapped[float] = mapped_column(Float, nullable=False)
    step: Mapped[int] = mapped_column(Integer, nullable=False)
    training_loss: Mapped[float | None] = mapped_column(Float)
    eval_loss: Mapped[float | None] = mapped_column(Float)
    accuracy: Mapped[float | None] = mapped_column(Float)
    f1: Mapped[float | None] = mapped_column(Float)
    precision: Mapped[float | None] = mapped_column(Float)
    recall: Mapped[float | None] = mapped_column(Float)
    learning_rate: Mapped[float | None] = mapped_column(Float)
    grad_norm: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    trial: Mapped[Trial] = relationship(back_populates="evaluations")


class Artifact(Base):
    __tablename__ = f"{TABLE_PREFIX}artifacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    trial_id: Mapped[int] = mapped_column(
        ForeignKey(f"{TABLE_PREFIX}trials.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(String(50), nullable=False)
    uri: Mapped[str] = mapped_column(Text, nullable=False)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)

    trial: Mapped[Trial] = relationship(back_populates="artifacts")
