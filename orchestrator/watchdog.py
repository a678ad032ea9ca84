"""Finding trials that will never report: hung workers and trials past their time limit.

Why the orchestrator watches and not the worker: a worker that is frozen (SIGSTOP),
deadlocked or swapped to death cannot police itself. The orchestrator reads each
unfinished trial's last heartbeat and start time from the store, which every
orchestrator (a `launch`, a `resume`, the server's controller) can do the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from orchestrator.plan_spec import ResourcesSpec
from storage import FailureKind, Store, TrialPulse, TrialState
from storage.models import utcnow

MISSED_BEATS = 3
INFEASIBLE_AFTER_S = 60.0  # a trial still waiting for resources no node has: failed


@dataclass(frozen=True)
class Verdict:
    number: int
    trial_id: int
    kind: FailureKind
    reason: str


class Watchdog:
    def __init__(self, store: Store, sweep: str, resources: ResourcesSpec) -> None:
        self.store, self.sweep = store, sweep
        self.interval = resources.heartbeat_interval
        self.timeout = resources.trial_timeout
        self.period = max(0.2, min(self.interval, 5.0))
        self._next_check = time.monotonic() + self.period

    def check(self, running: set[int], infeasible: Callable[[], str | None]) -> list[Verdict]:
        """Verdicts on the trials in `running` (Optuna numbers) that are hung, too old, or
        waiting for resources no node has; reads the store at most once per period."""
        now_mono = time.monotonic()
        if not running or now_mono < self._next_check:
            return []
        self._next_check = now_mono + self.period
        pulses = [
            p for p in self.store.trial_pulses(self.sweep) if p.optuna_trial_number in running
        ]
        verdicts = [v for p in pulses if (v := self.judge(p)) is not None]
        waiting = [p for p in pulses if _waited_too_long(p)]
        reason = infeasible() if waiting else None
        if reason is not None:
            verdicts += [
                Verdict(p.optuna_trial_number or 0, p.id, FailureKind.BAD_INPUT, reason)
                for p in waiting
            ]
        return verdicts

    def judge(self, pulse: TrialPulse) -> Verdict | None:
        if pulse.state is not TrialState.RUNNING or pulse.optuna_trial_number is None:
            return None  # PENDING: waiting for a worker slot, nothing to beat yet
        now = utcnow()
        number = pulse.optuna_trial_number
        if self.timeout is not None and pulse.started_at is not None:
            age = (now - pulse.started_at).total_seconds()
            if age > self.timeout:
                reason = f"stopped at resources.trial_timeout ({self.timeout:g} s, ran {age:.0f} s)"
                return Verdict(number, pulse.id, FailureKind.TIMEOUT, reason)
        last = pulse.heartbeat_at or pulse.started_at
        limit = timedelta(seconds=MISSED_BEATS * self.interval)
        if last is not None and now - last > limit:
            silent = (now - last).total_seconds()
            reason = (
                f"worker lost: no heartbeat for {silent:.0f} s "
                f"({MISSED_BEATS} x resources.heartbeat_interval {self.interval:g} s); killed"
            )
            return Verdict(number, pulse.id, FailureKind.WORKER_LOST, reason)
        return None


def _waited_too_long(pulse: TrialPulse) -> bool:
    age = (utcnow() - pulse.created_at).total_seconds()
    return pulse.state is TrialState.PENDING and age > INFEASIBLE_AFTER_S
