"""Initial sweepctl schema: sweeps, trials, evaluations, artifacts.

Self-contained on purpose (no imports from storage.models): a migration must
keep describing the schema as it was, even after the models move on.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIAL_STATES = ("PENDING", "RUNNING", "COMPLETED", "PRUNED", "FAILED")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _create_sweeps() -> None:
    op.create_table(
        "sweepctl_sweeps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("spec", _json(), nullable=False),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_sweepctl_sweeps"),
        sa.UniqueConstraint("name", name="uq_sweepctl_sweeps_name"),
    )


def _create_trials() -> None:
    op.create_table(
        "sweepctl_trials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sweep_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=100), nullable=True),
        sa.Column(
            "state",
            sa.Enum(*TRIAL_STATES, name="trialstate", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("params", _json(), nullable=False),
        sa.Column("config", _json(), nullable=False),
        sa.Column("objective", sa.Float(), nullable=True),
        sa.Column("metrics", _json(), nullable=True),
        sa.Column("resources", _json(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        _timestamp("created_at"),
        _timestamp("started_at", nullable=True),
        _timestamp("finished_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["sweep_id"],
            ["sweepctl_sweeps.id"],
            name="fk_sweepctl_trials_sweep_id_sweepctl_sweeps",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sweepctl_trials"),
        sa.UniqueConstraint("sweep_id", "number", name="uq_sweepctl_trials_sweep_id_number"),
    )
    op.create_index("ix_sweepctl_trials_sweep_id", "sweepctl_trials", ["sweep_id"])
    op.create_index("ix_sweepctl_trials_state", "sweepctl_trials", ["state"])


def _create_evaluations() -> None:
    metric_columns = (
        "training_loss",
        "eval_loss",
        "accuracy",
        "f1",
        "precision",
        "recall",
        "learning_rate",
        "grad_norm",
    )
    op.create_table(
        "sweepctl_evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Float(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Float(), nullable=True) for name in metric_columns),
        sa.Column("metrics", _json(), nullable=False),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["trial_id"],
            ["sweepctl_trials.id"],
            name="fk_sweepctl_evaluations_trial_id_sweepctl_trials",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sweepctl_evaluations"),
        sa.UniqueConstraint("trial_id", "step", name="uq_sweepctl_evaluations_trial_id_step"),
    )
    op.create_index("ix_sweepctl_evaluations_trial_id", "sweepctl_evaluations", ["trial_id"])


def _create_artifacts() -> None:
    op.create_table(
        "sweepctl_artifacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["trial_id"],
            ["sweepctl_trials.id"],
            name="fk_sweepctl_artifacts_trial_id_sweepctl_trials",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sweepctl_artifacts"),
    )
    op.create_index("ix_sweepctl_artifacts_trial_id", "sweepctl_artifacts", ["trial_id"])


def upgrade() -> None:
    _create_sweeps()
    _create_trials()
    _create_evaluations()
    _create_artifacts()


def downgrade() -> None:
    op.drop_table("sweepctl_artifacts")
    op.drop_table("sweepctl_evaluations")
    op.drop_table("sweepctl_trials")
    op.drop_table("sweepctl_sweeps")
