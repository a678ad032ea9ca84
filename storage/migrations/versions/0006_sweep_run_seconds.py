"""How long orchestrators have driven a sweep: sweeps.run_seconds, for `budget.max_wall_time`.

Added to when an orchestrator lets its lease go (the seconds since it took it), and when
a successor takes over an expired lease (the dead holder's time up to its last renewal).
So a sweep resumed next week is charged for the hours it ran, not for the week it waited.
The new sweep state STOPPED (a budget was used up) needs no DDL: states are stored by
name in a VARCHAR(16) without a CHECK constraint (see 0004).

In-place ADD COLUMN only, for the reason given in 0002.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SWEEPS = "sweepctl_sweeps"


def upgrade() -> None:
    op.add_column(SWEEPS, sa.Column("run_seconds", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column(SWEEPS, "run_seconds")
