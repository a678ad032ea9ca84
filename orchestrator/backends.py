"""Where trials run. The orchestrator only calls start / poll / stop_all; each backend fills
in `_launch` and `_poll`.

RayBackend places each trial as a Ray task with the spec's cpus_per_trial/gpus_per_trial
(Ray sets CUDA_VISIBLE_DEVICES for the task); a task that asks for a GPU runs in a worker
process that exits afterwards (`max_calls=1`), so GPU memory is handed back between
trials. Ray's own task retries are off (`max_retries=0`): a retry would re-run the same
Optuna trial, which the store refuses, so the point was silently lost; sweepctl retries a
configuration itself as a new attempt (orchestrator.retries). A dead worker comes back as
a FAILED result with kind worker_lost (oom when Ray's memory monitor killed it). The retry
of an out-of-memory trial always starts in a new worker process (`fresh_process_env`).

Without an address sweepctl starts its own local Ray (`address="local"`): plain
`ray.init()` would join whatever cluster left its address file in Ray's temp directory
(any `ray start`, a test suite's cluster) and send the sweep's database URL there.

InlineBackend runs each trial synchronously in this process: deterministic, no
scheduling, for tests and replays. It cannot stop a trial it is running, so heartbeat
loss and trial_timeout are enforced on Ray only.

Why ask/tell with Ray tasks and not Ray Tune + OptunaSearch: Tune's controller costs
about a second per trial on its own (measured 1.1 s/trial on SQLite), keeps its own trial
state beside ours, and has no notion of enqueued fixed configurations or stages. Plain
tasks keep one source of truth (the study and the sweepctl tables in one database).
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from typing import Any

from sweepctl.workers.execute import execute_job
from sweepctl.workers.job import JobResult, TrialJob

STOP_WAIT_S = 10.0  # longest wait for a cancelled trial's worker to be gone


class ExecutionBackend(ABC):
    """The set of trials in flight is shared with the watchdog's thread (which kills hung
    ones while the main loop may be blocked on the store), so it changes under a lock."""

    def __init__(self) -> None:
        self._running: dict[int, Any] = {}
        self._lock = threading.Lock()

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def running_numbers(self) -> set[int]:
        with self._lock:
            return set(self._running)

    def start(self, job: TrialJob) -> None:
        handle = self._launch(job)
        with self._lock:
            self._running[job.optuna_number] = handle

    def kill(self, numbers: list[int]) -> list[int]:
        """Stop these trials now (hung, overdue, or all of them on cancel); their results,
        if any, are never polled. Returns those that were still running (for the others
        the result came first)."""
        with self._lock:
            stopped = {n: h for n in numbers if (h := self._running.pop(n, None)) is not None}
        for handle in stopped.values():
            self._stop(handle)
        self._await_stopped(list(stopped.values()))
        return list(stopped)

    def poll(self, timeout: float) -> list[JobResult]:
        """Results of trials that finished, waiting at most `timeout` seconds for one; a
        trial killed meanwhile is left out (the killer reports it)."""
        if not self._running:
            return []
        done = self._poll(timeout)
        with self._lock:
            return [r for r in done if self._running.pop(r.optuna_number, None) is not None]

    def stop_all(self) -> list[int]:
        with self._lock:
            numbers = list(self._running)
        return self.kill(numbers)

    def shutdown(self) -> None:
        return None

    @abstractmethod
    def _launch(self, job: TrialJob) -> Any: ...

    @abstractmethod
    def _poll(self, timeout: float) -> list[JobResult]: ...

    def _stop(self, handle: Any) -> None:
        return None

    def _await_stopped(self, handles: list[Any]) -> None:
        """Return once stopped trials are really gone, so the next one is not placed on a
        worker that is still dying."""
        return None

    def infeasible(self) -> str | None:
        """Why no worker can ever take a trial (RayBackend: no node has the resources)."""
        return None

    def starts_at_once(self) -> bool:
        """True when every trial in flight has the resources to start now, so one that
        has not started was lost on the way (RayBackend on a private Ray)."""
        return False


class InlineBackend(ExecutionBackend):
    def _launch(self, job: TrialJob) -> JobResult:
        return execute_job(job)

    def _poll(self, timeout: float) -> list[JobResult]:
        with self._lock:
            return list(self._running.values())


class RayBackend(ExecutionBackend):
    def __init__(
        self, cpus_per_trial: float, gpus_per_trial: float, address: str | None = None
    ) -> None:
        super().__init__()
        import ray

        self._ray = ray
        self._owns_ray = init_ray(address)  # a caller's Ray session is left running
        self._demand = (cpus_per_trial, gpus_per_trial)
        # A private local Ray never grows, so an impossible request is refused now; a
        # joined cluster may add nodes (an autoscaler), so it gets START_DEADLINE_S.
        self._capacity: int | None = None  # trials a private Ray holds at once
        if ray_address(address) == "local":
            try:
                check_feasible(cpus_per_trial, gpus_per_trial)
            except BaseException:
                self.shutdown()
                raise
            self._capacity = _capacity(cpus_per_trial, gpus_per_trial)
        options: dict[str, Any] = {
            "num_cpus": cpus_per_trial,
            "num_gpus": gpus_per_trial,
            "max_retries": 0,
        }
        if gpus_per_trial > 0:
            options["max_calls"] = 1
        self._task = ray.remote(**options)(execute_job)  # max_calls is refused by .options()
        self._refs: dict[Any, TrialJob] = {}

    def _launch(self, job: TrialJob) -> Any:
        options: dict[str, Any] = {}
        if job.after_oom:
            options["runtime_env"] = fresh_process_env(job)
        if job.gpus_per_trial is not None:
            options["num_gpus"] = job.gpus_per_trial
        ref = (self._task.options(**options) if options else self._task).remote(job)
        with self._lock:
            self._refs[ref] = job
        return ref

    def _poll(self, timeout: float) -> list[JobResult]:
        with self._lock:
            refs = list(self._refs)
        ready, _ = self._ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:  # collect everything else that is already done too
            more, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0)
            ready = list(dict.fromkeys([*ready, *more]))
        return [r for ref in ready if (r := self._result(ref)) is not None]

    def _result(self, ref: Any) -> JobResult | None:
        with self._lock:
            job = self._refs.pop(ref, None)
        if job is None:
            return None  # killed by the watchdog while we waited
        try:
            return self._ray.get(ref)
        except Exception as exc:  # worker died (OOM-killed, segfault): the trial failed
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return JobResult(
                job.optuna_number,
                "FAILED",
                trial_id=job.trial_id,
                error=f"worker process failed: {type(exc).__name__}: {detail}",
                failure_kind=_ray_failure_kind(exc),
            )

    def infeasible(self) -> str | None:
        """Why no node of the cluster can run a trial right now, or None."""
        from sweepctl.spec.errors import UsageError

        try:
            check_feasible(*self._demand)
        except UsageError as exc:
            return str(exc)
        return None

    def starts_at_once(self) -> bool:
        return self._capacity is not None and self.running <= self._capacity

    def _stop(self, handle: Any) -> None:
        with self._lock:
            self._refs.pop(handle, None)
        self._ray.cancel(handle, force=True)

    def _await_stopped(self, handles: list[Any]) -> None:
        """Ray keeps a leased worker for the next task of the same kind: a retry started
        right after `cancel` can be pushed to the worker being killed (a frozen one takes
        a moment to die) and fail with it, spending an attempt. A cancelled task's ref
        resolves once its worker is gone, so wait for that (bounded: cancel has no ack)."""
        if handles:
            self._ray.wait(handles, num_returns=len(handles), timeout=STOP_WAIT_S)

    def shutdown(self) -> None:
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()


def _capacity(cpus_per_trial: float, gpus_per_trial: float) -> int:
    """How many trials the local Ray's resources hold at once."""
    import ray

    total = ray.cluster_resources()
    fits = [total.get("CPU", 0) // cpus_per_trial] if cpus_per_trial > 0 else []
    if gpus_per_trial > 0:
        fits.append(total.get("GPU", 0) // gpus_per_trial)
    return int(min(fits)) if fits else 1 << 30


def _ray_failure_kind(exc: BaseException) -> str:
    import ray.exceptions as errors

    if isinstance(exc, errors.OutOfMemoryError):
        return "oom"
    if isinstance(exc, errors.RayTaskError):
        return "error"  # the task raised outside execute_job's net (deserialising the job)
    return "worker_lost"  # WorkerCrashedError, NodeDiedError, ObjectLostError, ...


def ray_address(explicit: str | None) -> str:
    """--ray-address, else a RAY_ADDRESS the user exported, else a new local Ray."""
    return explicit or os.environ.get("RAY_ADDRESS") or "local"


def init_ray(address: str | None) -> bool:
    """Join `address` (or start a private local Ray) unless this process already has a
    session; True when this call started it, so the caller knows it must shut it down."""
    import ray

    if ray.is_initialized():
        return False
    ray.init(
        address=ray_address(address),
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": _forwarded_environment()},
    )
    return True


def fresh_process_env(job: TrialJob) -> dict[str, Any]:
    """A runtime env no worker has yet: Ray starts a new process for it. Why: the retry of
    a trial that ran out of memory must not inherit the memory its try still held (a CPU
    worker is reused by Ray; a GPU one already exits after each trial)."""
    marker = {"SWEEPCTL_FRESH_WORKER_FOR": f"{job.sweep}:{job.optuna_number}"}
    return {"env_vars": {**_forwarded_environment(), **marker}}


def _forwarded_environment() -> dict[str, str]:
    """Settings the worker processes must share with the CLI that launched them."""
    keys = (
        "SWEEPCTL_HOME",
        "SWEEPCTL_DB",
        "HF_HUB_OFFLINE",
        "HF_DATASETS_OFFLINE",
        "WANDB_MODE",
        "SWEEPCTL_REPLAY_STEP_SECONDS",
        "SWEEPCTL_FAULT_OOM_AT_STEP",  # workers.faults
        "SWEEPCTL_FAULT_KILL_AFTER_EPOCH",
        "TOKENIZERS_PARALLELISM",
    )
    return {k: os.environ[k] for k in keys if k in os.environ}


def check_feasible(cpus_per_trial: float, gpus_per_trial: float) -> None:
    """Refuse, before any row is written, a trial no node of the cluster can ever hold:
    Ray would keep it pending forever with only a log warning nobody sees."""
    import ray

    from sweepctl.spec.errors import UsageError

    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if any(r.get("CPU", 0) >= cpus_per_trial and r.get("GPU", 0) >= gpus_per_trial for r in nodes):
        return
    most_gpus = max((r.get("GPU", 0) for r in nodes), default=0)
    most_cpus = max((r.get("CPU", 0) for r in nodes), default=0)
    if gpus_per_trial > most_gpus:
        raise UsageError(
            f"resources.gpus_per_trial: {gpus_per_trial:g} GPU(s) per trial, but no Ray node "
            f"has that many (most on one node: {most_gpus:g})"
        )
    raise UsageError(
        f"resources.cpus_per_trial: {cpus_per_trial:g} CPU(s) per trial, but no Ray node "
        f"has that many (most on one node: {most_cpus:g})"
    )
