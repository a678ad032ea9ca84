"""Sweep and stage lifecycle: sweeps.state/updated_at, the stages table, and
trials.optuna_trial_number.

Self-contained like 0001. Every change to an existing table is an in-place
ALTER TABLE ADD COLUMN / CREATE INDEX, never a batch table rebuild: on SQLite a
rebuild drops the old table, and with ``foreign_keys=ON`` (which cannot be
switched off inside the migration's transaction) that DROP would cascade-delete
every trial, evaluation and artifact of the database.

Revision ID: 0002
Revises: 0001
Create Date: 2025-02-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SWEEP_STATES = ("PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED")
OPTUNA_NUMBER_INDEX = "ix_sweepctl_trials_sweep_id_optuna_trial_number"
# Only lets SQLite add a NOT NULL column to existing rows; every row is backfilled
# from created_at in the same transaction, so no row ever keeps this value.
_PLACEHOLDER_TIMESTAMP = sa.text("'1970-01-01 00:00:00'")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _state(name: str = "state") -> sa.Column[object]:
    return sa.Column(
        name,
        sa.Enum(*SWEEP_STATES, name="sweepstate", native_enum=False, length=16),
        nullable=False,
        server_default="PENDING",
    )


def _timestamp(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _extend_sweeps() -> None:
    op.add_column("sweepctl_sweeps", _state())
    op.add_column(
        "sweepctl_sweeps",
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=_PLACEHOLDER_TIMESTAMP,
        ),
    )
    op.execute("UPDATE sweepctl_sweeps SET updated_at = created_at")
    if op.get_bind().dialect.name != "sqlite":
        # SQLite cannot drop a default without the rebuild described above; elsewhere
        # the placeholder goes, so a forgotten updated_at fails instead of lying.
        op.alter_column("sweepctl_sweeps", "updated_at", server_default=None)


def _create_stages() -> None:
    op.create_table(
        "sweepctl_stages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sweep_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("strategy", sa.String(length=20), nullable=False),
        _state(),
        sa.Column("summary", _json(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.ForeignKeyConstraint(
            ["sweep_id"],
            ["sweepctl_sweeps.id"],
            name="fk_sweepctl_stages_sweep_id_sweepctl_sweeps",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sweepctl_stages"),
        sa.UniqueConstraint("sweep_id", "name", name="uq_sweepctl_stages_sweep_id_name"),
        sa.UniqueConstraint("sweep_id", "position", name="uq_sweepctl_stages_sweep_id_position"),
    )


def _extend_trials() -> None:
    op.add_column("sweepctl_trials", sa.Column("optuna_trial_number", sa.Integer()))
    op.create_index(
        OPTUNA_NUMBER_INDEX,
        "sweepctl_trials",
        ["sweep_id", "optuna_trial_number"],
        unique=True,
    )


def upgrade() -> None:
    _extend_sweeps()
    _create_stages()
    _extend_trials()


def downgrade() -> None:
    """Plain DROP COLUMN (SQLite >= 3.35) for the same reason upgrade avoids rebuilds."""
    op.drop_index(OPTUNA_NUMBER_INDEX, table_name="sweepctl_trials")
    op.drop_column("sweepctl_trials", "optuna_trial_number")
    op.drop_table("sweepctl_stages")
    op.drop_column("sweepctl_sweeps", "updated_at")
    op.drop_column("sweepctl_sweeps", "state")
