"""Dashboard reads the Store does not offer yet, in one place so they can move into
storage/views.py as Store methods later (the store is the only module that issues SQL;
these only read, through the Store's own read-only sessions).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from storage import Store, TrialState
from storage.models import Trial


@dataclass(frozen=True)
class TrialLabel:
    """What a chart legend needs about a trial."""

    id: int
    number: int
    stage: str | None
    state: TrialState


def trial_labels(store: Store, sweep_id: int, trial_ids: Sequence[int]) -> dict[int, TrialLabel]:
    """The given trials that belong to the sweep, by id: one indexed read, however large
    the sweep (the curves endpoint must not read every trial to check a handful)."""
    if not trial_ids:
        return {}
    query = select(Trial.id, Trial.number, Trial.stage, Trial.state).where(
        Trial.sweep_id == sweep_id, Trial.id.in_(list(trial_ids))
    )
    with store._read_session.begin() as session:  # private: see the module docstring
        return {
            row.id: TrialLabel(row.id, row.number, row.stage, row.state)
            for row in session.execute(query)
        }
