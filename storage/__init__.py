"""Persistence for sweepctl: sweeps, stages, trials, evaluations and artifacts.

Import from here; the submodules are implementation detail.
"""

from __future__ import annotations

from sweepctl.storage.engine import optuna_storage
from sweepctl.storage.errors import LeaseHeldError, StoreError, SweepExistsError
from sweepctl.storage.jsonsafe import sanitize_json
from sweepctl.storage.liveness import TrialPulse, owner_name, owner_place
from sweepctl.storage.records import (
    ArtifactRecord,
    EvaluationRecord,
    StageRecord,
    SweepRecord,
    TrialRecord,
)
from sweepctl.storage.states import FailureKind, StateTransitionError, SweepState, TrialState
from sweepctl.storage.store import Store
from sweepctl.storage.urls import (
    DB_ENV,
    DEFAULT_HOME_ENV,
    default_db_url,
    redact_url,
    resolve_db_url,
    sweepctl_home,
)
from sweepctl.storage.usage import TrialUsage
from sweepctl.storage.views import SweepStats, TrialSummary

__all__ = [
    "DB_ENV",
    "DEFAULT_HOME_ENV",
    "ArtifactRecord",
    "EvaluationRecord",
    "FailureKind",
    "LeaseHeldError",
    "StageRecord",
    "StateTransitionError",
    "Store",
    "StoreError",
    "SweepExistsError",
    "SweepRecord",
    "SweepState",
    "SweepStats",
    "TrialPulse",
    "TrialRecord",
    "TrialState",
    "TrialSummary",
    "TrialUsage",
    "default_db_url",
    "optuna_storage",
    "owner_name",
    "owner_place",
    "redact_url",
    "resolve_db_url",
    "sanitize_json",
    "sweepctl_home",
]
