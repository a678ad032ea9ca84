"""Sweeps owned by `sweepctl serve`: sweeps.controller and sweeps.error.

``controller`` says which process drives a sweep: NULL for one started by
``sweepctl launch`` in a terminal, "server" for one submitted to ``sweepctl serve``.
The server queues, runs and, after a restart, resumes only its own sweeps, so it never
starts a second orchestrator beside a terminal that is still running one. ``error``
keeps why a sweep ended FAILED (the server has no terminal to print it to).

In-place ADD COLUMN only, for the reason given in 0002.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("sweepctl_sweeps", sa.Column("controller", sa.String(length=32)))
    op.add_column("sweepctl_sweeps", sa.Column("error", sa.Text()))


def downgrade() -> None:
    op.drop_column("sweepctl_sweeps", "error")
    op.drop_column("sweepctl_sweeps", "controller")
