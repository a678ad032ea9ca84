"""Finding trials that will never report: hung workers and trials past their time limit.

Why the orchestrator watches and not the worker: a worker that is frozen (SIGSTOP),
deadlocked or swapped to death cannot police itself. The orchestrator reads each
unfinished trial's last heartbeat and start time from the store, which every
orchestrator (a `launch`, a `resume`, the server's controller) can do the same way.

Why its own thread: the thing it watches can block the main loop. A worker frozen inside
a SQLite write transaction holds the database's only write lock, so the loop's next row
creation or Optuna write waits on it; a watchdog inside that loop would wait too, and the
sweep would stall until the store gave up. Reads never wait in WAL mode, so this thread
still sees the silent trial, kills its worker (which frees the lock) and hands the verdict
to the loop, which settles it like any other result.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sweepctl.spec.plan import ResourcesSpec
from sweepctl.storage import FailureKind, Store, StoreError, TrialPulse, TrialState
from sweepctl.storage.models import utcnow
from sweepctl.workers.job import JobResult

if TYPE_CHECKING:
    from sweepctl.orchestrator.backends import ExecutionBackend

log = logging.getLogger("sweepctl.watchdog")

MISSED_BEATS = 3
# A trial with no first beat this long after its row was made: no node can hold it, or a
# worker took it and never started it. Either way it is failed, never left waiting.
START_DEADLINE_S = 60.0


@dataclass(frozen=True)
class Verdict:
    number: int
    trial_id: int
    kind: FailureKind
    reason: str
    silent_s: float = 0.0  # worker_lost: seconds since its last beat


class Watchdog:
    def __init__(self, store: Store, sweep: str, resources: ResourcesSpec) -> None:
        self.store, self.sweep = store, sweep
        self.interval = resources.heartbeat_interval
        self.timeout = resources.trial_timeout
        self.period = max(0.2, min(self.interval, 5.0))

    def check(self, running: set[int], backend: ExecutionBackend) -> list[Verdict]:
        """Verdicts on the trials in `running` (Optuna numbers) that are hung, too old, or
        waiting for resources no node has.

        Of several silent workers only the longest-silent one is condemned per check. On
        SQLite one worker frozen inside a write holds the only write lock, so every other
        worker's beat waits behind it and they all fall silent together; killing one frees
        the lock if it was the holder, the others' waiting beats land at once, and the next
        check spares them. Workers that really died are reported by the backend itself."""
        if not running:
            return []
        pulses = [
            p for p in self.store.trial_pulses(self.sweep) if p.optuna_trial_number in running
        ]
        verdicts = [v for p in pulses if (v := self.judge(p)) is not None]
        lost = [v for v in verdicts if v.kind is FailureKind.WORKER_LOST]
        if len(lost) > 1:
            spared = sorted(lost, key=lambda v: v.silent_s)[:-1]
            verdicts = [v for v in verdicts if v not in spared]
        waiting = [p for p in pulses if _waited_too_long(p)]
        return verdicts + (self._unstarted(waiting, backend) if waiting else [])

    def _unstarted(self, waiting: list[TrialPulse], backend: ExecutionBackend) -> list[Verdict]:
        """Trials without a first beat after START_DEADLINE_S. Either no node can hold them
        (bad_input, never retried), or, on a private Ray with room for every trial in flight,
        Ray handed them to a worker that never started them (a worker frozen while idle):
        worker_lost, retried. On a joined cluster they may just be queued, so they wait."""
        reason = backend.infeasible()
        kind = FailureKind.BAD_INPUT
        if reason is None and backend.starts_at_once():
            kind = FailureKind.WORKER_LOST
            reason = (
                f"worker lost: the trial was placed but no worker started it "
                f"(no first heartbeat in {START_DEADLINE_S:g} s); killed"
            )
        if reason is None:
            return []
        return [Verdict(p.optuna_trial_number or 0, p.id, kind, reason) for p in waiting]

    def judge(self, pulse: TrialPulse) -> Verdict | None:
        """A trial with a worker (RUNNING, or PENDING with a first beat: the worker took it
        and is loading) that is past its time limit or has missed MISSED_BEATS beats."""
        if pulse.optuna_trial_number is None or not _has_worker(pulse):
            return None  # PENDING without a beat: waiting for a worker slot
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
            return Verdict(number, pulse.id, FailureKind.WORKER_LOST, reason, silent)
        return None


def _has_worker(pulse: TrialPulse) -> bool:
    return pulse.state is TrialState.RUNNING or pulse.heartbeat_at is not None


def _waited_too_long(pulse: TrialPulse) -> bool:
    age = (utcnow() - pulse.created_at).total_seconds()
    return not _has_worker(pulse) and age > START_DEADLINE_S


class WatchdogThread:
    """Runs `Watchdog.check` every period beside the stage loop: kills what it condemns at
    once and queues a FAILED result for the loop to settle (`verdicts`)."""

    def __init__(self, watchdog: Watchdog, backend: ExecutionBackend) -> None:
        self.watchdog, self.backend = watchdog, backend
        self._results: queue.SimpleQueue[JobResult] = queue.SimpleQueue()
        self._killing = 0  # kills between leaving the backend and reaching the queue
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="sweepctl-watchdog", daemon=True)

    def __enter__(self) -> WatchdogThread:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    @property
    def busy(self) -> bool:
        """A kill is under way: its trial has left the backend but its result is not
        queued yet, so the stage is not over even if nothing is running."""
        with self._lock:
            return self._killing > 0 or not self._results.empty()

    def verdicts(self, wait_s: float = 0.0) -> list[JobResult]:
        """Trials killed since the last call, as results, waiting up to `wait_s` for one."""
        found = []
        try:
            found.append(self._results.get(timeout=wait_s or None, block=wait_s > 0))
        except queue.Empty:
            return found
        while not self._results.empty():
            found.append(self._results.get_nowait())
        return found

    def _watch(self) -> None:
        while not self._stop.wait(self.watchdog.period):
            try:
                self._sweep_once()
            except StoreError as exc:  # the store is down: the loop copes; look again later
                log.warning("watchdog could not read the store: %s", exc)
            except Exception:  # never let the thread die silently: the sweep relies on it
                log.exception("watchdog check failed; trying again next period")

    def _sweep_once(self) -> None:
        verdicts = self.watchdog.check(self.backend.running_numbers, self.backend)
        if not verdicts:
            return
        with self._lock:
            self._killing += 1
        try:
            killed = set(self.backend.kill([v.number for v in verdicts]))
            for verdict in verdicts:
                if verdict.number in killed:  # not killed: its own result came first
                    self._results.put(
                        JobResult(
                            verdict.number, "FAILED", trial_id=verdict.trial_id,
                            error=verdict.reason, failure_kind=verdict.kind.value,
                        )
                    )  # fmt: skip
        finally:
            with self._lock:
                self._killing -= 1
