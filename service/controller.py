"""The server's controller: runs the sweeps submitted to `sweepctl serve`.

    submit (API) ─► sweep PENDING, controller="server"   (the queue is the store itself)
    resume (API) ─► a FAILED/CANCELLED sweep of ours back to RUNNING
    controller loop, every poll_seconds:
        its own sweeps RUNNING with no thread here (left by a server that stopped, or
        resumed through the API) ─► resume; they were admitted already, so no limit applies
        while fewer than max_concurrent_sweeps run: oldest queued ─► start
    each sweep runs in its own thread: orchestrator.sweep.start/resume with the server's
    backend; it ends COMPLETED, CANCELLED (cancel from the API or the CLI flips the state,
    the orchestrator notices on its next poll) or FAILED with the error kept on the sweep.

Only sweeps with controller="server" are touched: a sweep a terminal launched into the
same database keeps its own orchestrator. The controller holds one map, sweep name → its
thread; everything else (queue order, states) is read from the store. Each tick reads the
queue only (`Store.sweep_queue`, no spec column); a sweep's spec is read when it starts.
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Any

from sweepctl.service.settings import ServeSettings
from sweepctl.storage import LeaseHeldError, Store, SweepState
from sweepctl.storage.views import QueuedSweep

SERVER = "server"
log = logging.getLogger("sweepctl.controller")


class SweepController:
    def __init__(self, settings: ServeSettings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._loop: threading.Thread | None = None
        self._owns_ray = False

    @property
    def running(self) -> list[str]:
        with self._lock:
            return [name for name, thread in self._threads.items() if thread.is_alive()]

    def start(self) -> None:
        self._loop = threading.Thread(target=self._serve, name="sweepctl-controller", daemon=True)
        self._loop.start()

    def stop(self) -> None:
        """Sweeps still running stay RUNNING in the store; the next server resumes them."""
        self._stopping.set()
        if self._loop is not None:
            self._loop.join(timeout=5)
        if self._owns_ray:
            import ray

            ray.shutdown()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                self.tick()
            except Exception:  # a store hiccup: the next tick tries again
                log.exception("controller tick failed")
            self._stopping.wait(self.settings.poll_seconds)

    def tick(self) -> None:
        """Resume our orphaned RUNNING sweeps, then start queued ones, oldest first."""
        with self._lock:
            self._threads = {n: t for n, t in self._threads.items() if t.is_alive()}
        for sweep in self._own_sweeps(SweepState.RUNNING):
            self._start(sweep, resume=True)
        free = self.settings.max_concurrent_sweeps - len(self.running)
        for sweep in self._own_sweeps(SweepState.PENDING)[: max(free, 0)]:
            self._start(sweep, resume=False)

    def _own_sweeps(self, state: SweepState) -> list[QueuedSweep]:
        return [
            s
            for s in self.store.sweep_queue(SERVER)
            if s.state is state and s.name not in self._threads
        ]

    def _start(self, sweep: QueuedSweep, resume: bool) -> None:
        """A sweep that cannot even start (Ray unreachable, `ray://` without ray[client])
        ends FAILED with the reason instead of being retried every second."""
        try:
            self._launch(sweep, resume)
        except Exception as exc:
            log.error("sweep %s could not start: %s", sweep.name, exc)
            self._mark_failed(sweep.name, f"{type(exc).__name__}: {exc}".splitlines()[0])

    def _launch(self, sweep: QueuedSweep, resume: bool) -> None:
        if self.settings.backend == "ray" and not self._owns_ray:
            from sweepctl.orchestrator.backends import init_ray

            self._owns_ray = init_ray(self.settings.ray_address)
        thread = threading.Thread(
            target=self._drive, args=(sweep, resume), name=f"sweep-{sweep.id}", daemon=True
        )
        with self._lock:
            self._threads[sweep.name] = thread
        thread.start()

    def _drive(self, sweep: QueuedSweep, resume: bool) -> None:
        from sweepctl.orchestrator import sweep as orchestration
        from sweepctl.spec.models import SweepSpec

        backend = None
        try:
            spec = SweepSpec.model_validate(self.store.sweep_spec(sweep.name))
            backend = self._backend(spec)
            run = orchestration.SweepRun(
                spec, self.store, backend, self.settings.db_url, self.settings.home,
                self.settings.runner, role="serve", notify_defaults=list(self.settings.notify),
                dashboard_url=self.settings.dashboard_url,
            )  # fmt: skip
            action = orchestration.resume if resume else orchestration.start
            state = action(run)
            log.info("sweep %s: %s", sweep.name, state.value)
        except LeaseHeldError as exc:  # a terminal drives it now; tried again next tick
            log.warning("sweep %s not resumed: %s", sweep.name, exc)
        except Exception as exc:
            if self._stopping.is_set():  # Ray went down with the server: resume next start
                log.warning("sweep %s interrupted by shutdown; resumed on restart", sweep.name)
                return
            log.error("sweep %s failed:\n%s", sweep.name, traceback.format_exc())
            self._mark_failed(sweep.name, f"{type(exc).__name__}: {exc}".splitlines()[0])
        finally:
            if backend is not None:
                backend.shutdown()

    def _backend(self, spec: Any) -> Any:
        from sweepctl.orchestrator.backends import InlineBackend, RayBackend

        if self.settings.backend == "inline":
            return InlineBackend()
        resources = spec.resources
        return RayBackend(
            resources.cpus_per_trial, resources.gpus_per_trial, self.settings.ray_address
        )

    def _mark_failed(self, name: str, error: str) -> None:
        try:
            if self.store.get_sweep(name).state is SweepState.PENDING:
                self.store.set_sweep_state(name, SweepState.RUNNING)
            self.store.set_sweep_state(name, SweepState.FAILED, error=error)
        except Exception:
            log.exception("sweep %s: could not record the failure", name)
