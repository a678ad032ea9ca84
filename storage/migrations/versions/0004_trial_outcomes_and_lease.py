"""Why trials end, retries, heartbeats and the sweep lease.

trials.failure_kind says why a FAILED trial failed (error, nan, oom, timeout,
worker_lost, bad_input); rows that were FAILED before this revision get ``error``, the
only kind the old code could tell. trials.attempt / retry_of make a retried
configuration a new, visible row that points at the one it retries.
trials.heartbeat_at is the worker's last beat, so a hung worker is noticed.
sweeps.owner / owner_since / lease_expires_at hold the one orchestrator allowed to drive
the sweep. The new trial state CANCELLED needs no DDL: states are stored by name in a
VARCHAR(16) without a CHECK constraint.

In-place ADD COLUMN only, for the reason given in 0002.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIALS = "sweepctl_trials"
SWEEPS = "sweepctl_sweeps"


def upgrade() -> None:
    op.add_column(TRIALS, sa.Column("failure_kind", sa.String(length=16)))
    op.add_column(TRIALS, sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"))
    op.add_column(TRIALS, sa.Column("retry_of", sa.Integer()))
    op.add_column(TRIALS, sa.Column("heartbeat_at", sa.DateTime(timezone=True)))
    op.execute(f"UPDATE {TRIALS} SET failure_kind = 'error' WHERE state = 'FAILED'")
    op.add_column(SWEEPS, sa.Column("owner", sa.String(length=200)))
    op.add_column(SWEEPS, sa.Column("owner_since", sa.DateTime(timezone=True)))
    op.add_column(SWEEPS, sa.Column("lease_expires_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    for column in ("lease_expires_at", "owner_since", "owner"):
        op.drop_column(SWEEPS, column)
    for column in ("heartbeat_at", "retry_of", "attempt", "failure_kind"):
        op.drop_column(TRIALS, column)
