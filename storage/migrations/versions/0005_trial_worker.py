"""Which process runs a trial: trials.worker, `role@host:pid`.

Written by the worker's first heartbeat, so a user (and `sweepctl show`) can tell
where a trial ran or hung, and a fault can be aimed at exactly that process. In-place
ADD COLUMN only, for the reason given in 0002.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRIALS = "sweepctl_trials"


def upgrade() -> None:
    op.add_column(TRIALS, sa.Column("worker", sa.String(length=200)))


def downgrade() -> None:
    op.drop_column(TRIALS, "worker")
