"""Plain immutable views of stored rows.

Callers never see ORM objects, so no lazy load can fire after the session
closed and nothing outside storage/ can mutate a row behind the Store's back.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storage.states import TrialState

_DATETIME_FIELDS = ("created_at", "started_at", "finished_at")


@dataclass(frozen=True)
class EvaluationRecord:
    epoch: float
    step: int
    training_loss: float | None = None
    eval_loss: float | None = None
    accuracy: float | None = None
    f1: float | None = None
    precision: float | None = None
    recall: float | None = None
    learning_rate: float | None = None
    grad_norm: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ArtifactRecord:
    kind: str
    uri: str
    size_bytes: int | None = None


@dataclass(frozen=True)
class TrialRecord:
    id: int
    sweep_name: str
    number: int
    stage: str | None
    state: TrialState
    params: dict[str, Any]
    config: dict[str, Any]
    objective: float | None
    metrics: dict[str, Any] | None
    resources: dict[str, Any] | None
    error: str | None
    traceback: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    evaluations: list[EvaluationRecord] = field(default_factory=list)
    artifacts: list[ArtifactRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for `--json` output and reports (ISO timestamps, state by name)."""
        data = dataclasses.asdict(self)
        data["state"] = self.state.name
        for key in _DATETIME_FIELDS:
            value: datetime | None = data[key]
            data[key] = value.isoformat() if value is not None else None
        return data
