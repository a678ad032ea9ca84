"""Plain immutable views of stored rows.

Callers never see ORM objects, so no lazy load can fire after the session
closed and nothing outside storage/ can mutate a row behind the Store's back.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sweepctl.storage.states import SweepState, TrialState

_DATETIME_FIELDS = ("created_at", "started_at", "finished_at", "heartbeat_at")


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
    # Last and defaulted so positional construction from before 0002 keeps working.
    optuna_trial_number: int | None = None
    failure_kind: str | None = None  # storage.states.FailureKind value, FAILED trials only
    attempt: int = 1
    retry_of: int | None = None  # the trial id this attempt retries
    heartbeat_at: datetime | None = None
    worker: str | None = None  # `role@host:pid` of the process that ran it (first beat)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for `--json` output and reports (ISO timestamps, state by name)."""
        data = dataclasses.asdict(self)
        data["state"] = self.state.name
        for key in _DATETIME_FIELDS:
            value: datetime | None = data[key]
            data[key] = value.isoformat() if value is not None else None
        return data


@dataclass(frozen=True)
class StageRecord:
    name: str
    position: int
    strategy: str
    state: SweepState
    summary: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "state": self.state.name}


@dataclass(frozen=True)
class SweepRecord:
    """A sweep with its stages (in position order) and how many trials are in each
    TrialState (every state present, zeros included), so status views need one read."""

    id: int
    name: str
    state: SweepState
    spec: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    stages: list[StageRecord] = field(default_factory=list)
    trial_counts: dict[str, int] = field(default_factory=dict)
    controller: str | None = None  # "server": queued, run and resumed by `sweepctl serve`
    error: str | None = None  # why the sweep ended FAILED or STOPPED
    owner: str | None = None  # the orchestrator holding the lease ("host pid N")
    owner_since: datetime | None = None
    lease_expires_at: datetime | None = None
    run_seconds: float = 0.0  # orchestrators' time on it before the current one (0006)

    def driven_seconds(self, now: datetime) -> float:
        return driven_seconds(self, now)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready like TrialRecord.to_dict: ISO timestamps, states by name."""
        return {
            "id": self.id,
            "name": self.name,
            "state": self.state.name,
            "spec": self.spec,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "stages": [stage.to_dict() for stage in self.stages],
            "trial_counts": dict(self.trial_counts),
            "controller": self.controller,
            "error": self.error,
            "owner": self.owner,
            "owner_since": self.owner_since.isoformat() if self.owner_since else None,
            "run_seconds": self.run_seconds,
        }


def driven_seconds(sweep: Any, now: datetime) -> float:
    """Wall time orchestrators have driven a sweep (a SweepRecord or a views.SweepRow),
    the current one included, up to its lease's expiry when it died without letting go."""
    since, expires = sweep.owner_since, sweep.lease_expires_at
    if sweep.owner is None or since is None:
        return float(sweep.run_seconds)
    until = min(now, expires) if expires else now
    return float(sweep.run_seconds) + max(0.0, (until - since).total_seconds())
