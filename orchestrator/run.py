"""A sweep in progress: what every stage of it shares.

Its own module so the stage runner and the sweep driver both depend on it and not on each
other (the layers and acyclic contracts in pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import optuna

from sweepctl.orchestrator.backends import ExecutionBackend
from sweepctl.orchestrator.proposals import Ranking
from sweepctl.orchestrator.search import open_study
from sweepctl.spec.models import SweepSpec
from sweepctl.storage import Store

Event = Callable[[str, dict[str, Any]], None]


@dataclass
class SweepRun:
    spec: SweepSpec
    store: Store
    backend: ExecutionBackend
    db_url: str
    home: str
    runner: str = "transformer"
    on_event: Event = lambda kind, data: None
    role: str = "launch"  # who holds the lease: launch, resume, serve
    # where the sweep's end is sent when its spec names no target (`serve --notify`), and
    # the dashboard a notification links to (orchestrator.notify)
    notify_defaults: list[str] = field(default_factory=list)
    dashboard_url: str | None = None
    study: optuna.Study = field(init=False)
    reports: dict[str, Ranking] = field(default_factory=dict)  # by stage: its ranking

    def __post_init__(self) -> None:
        self.study = open_study(self.spec, self.db_url)
