"""Finding trials that will never report: hung workers and trials past their time limit.

Why the orchestrator watches and not the worker: a worker that is frozen (SIGSTOP),
deadlocked or swapped to death cannot police itself. The orchestrator reads each
unfinished trial's last heartbeat and start time from the store, which every
orchestrator (a `launch`, a `resume`, the server's controller) can do the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

from orchestrator.plan_spec import ResourcesSpec
from storage import FailureKind, Store, TrialPulse, TrialState
from storage.models import utcnow

MISSED_BEATS = 3


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

    def check(self, running: set[int]) -> list[Verdict]:
        """Verdicts on the trials in `running` (Optuna numbers) that are hung or too old;
        reads the store at most once per period."""
        now_mono = time.monotonic()
        if not running or now_mono < self._next_check:
            return []
        self._next_check = now_mono + self.period
        return [
            verdict
            for pulse in self.store.trial_pulses(self.sweep)
            if pulse.optuna_trial_number in running and (verdict := self.judge(pulse)) is not None
        ]

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
