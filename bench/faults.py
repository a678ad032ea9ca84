"""Fault injection: does a sweep's record stay true when its processes are killed?

Each case runs a real `sweepctl launch` (Ray backend, a private local Ray, 2 trials at a
time) of a 72-point grid over NMTLC hyperparameters, on the noop or the replay runner and
on SQLite or PostgreSQL, and injects one kind of fault N times at random moments:

    orchestrator_kill  SIGKILL of `sweepctl launch`/`resume`, then `sweepctl resume`; on the
                       inline backend by default (`--orchestrator-backend ray` for Ray),
                       because a private Ray's start-up (~15 s on 2 cores) per resume
                       would fit only a handful of kills into one sweep
    worker_kill        SIGKILL of the Ray worker running a trial (the kernel OOM killer)
    worker_stop        SIGSTOP of that worker (a hang): found after 3 missed heartbeats
    pg_restart         a PostgreSQL restart mid-sweep (PostgreSQL cases only)

After the last injection the sweep is resumed until it ends, and the record is checked:
completed trials lost (a COMPLETED row before an injection that is not COMPLETED with the
same objective at the end), configurations trained twice (more than one finished row per
point), RUNNING/PENDING rows left, attempts retried, points given up, and the time to
recover (injection -> the killed trial's retry started, or for an orchestrator kill ->
the resumed orchestrator's first trial running, or for a restart -> the next completed
trial). The goal is 0 for the first three.

`--load` adds the store load row: 3 sweeps x 200 trials, 4 concurrent writers each, all
at once on one SQLite file and on one PostgreSQL database, doing the writes a trial makes
(create, RUNNING, 3 evaluations, 2 heartbeats, COMPLETED), with lock errors, lost rows and
p50/p99 write latency (bench/fault_load.py).

    python bench/faults.py --injections 20 --load --json bench/results/faults.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import yaml  # noqa: E402

from bench.fault_load import load_row, pg_database  # noqa: E402
from sweepctl.storage import Store, TrialState  # noqa: E402
from tests.fault_helpers import (  # noqa: E402
    poll_until,
    start_sweepctl,
    stored_trials,
    worker_pid,
)

NMTLC_FILE = REPO_ROOT.parent / "shared" / "data" / "nmtlc" / "nmtlc.json"
KINDS = ("orchestrator_kill", "worker_kill", "worker_stop", "pg_restart")
STEP_SECONDS = {"noop": 0.8, "replay": 0.05}  # a trial lasts about a second either way
# Worker faults aim at a trial in flight: trials four times as long leave the sweep
# running through 20 injections and make a hit on a trial just finishing rare; a
# restart takes a few seconds, so 20 of them need the longer sweep too.
TRIAL_SCALE = {"worker_kill": 4.0, "worker_stop": 4.0, "pg_restart": 4.0}
SWEEP = "faults"
ORCHESTRATOR_BACKEND = "inline"
POINTS = 6 * 4 * 3  # the grid below


@dataclass
class CaseResult:
    kind: str
    runner: str
    store: str
    injections: int
    landed: int = 0  # injections that hit a trial in flight (worker faults, restarts)
    completed_lost: int = 0
    trained_twice: int = 0
    unfinished_left: int = 0
    attempts_retried: int = 0
    given_up: int = 0
    final_state: str = ""
    completed_points: int = 0
    recover_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def spec_file(directory: Path, runner: str, kind: str) -> Path:
    spec = {
        "name": SWEEP,
        "model": "replay",
        "model_args": {
            "bpe": 8,
            "num_layers": 2,
            "model_size": 512,
            "ff_num_hidden": 1024,
            "initial_lr": 0.0006,
        },
        "dataset": {"path": "nmtlc", "name": "material-sw-en", "text_fields": ["x"]},
        "objective": {"metric": "loss"},
        "tracking": {"wandb": {"mode": "disabled"}},
        "search_space": {
            "bpe": {"type": "categorical", "choices": [1, 2, 4, 8, 16, 32]},
            "num_layers": {"type": "categorical", "choices": [1, 2, 4, 6]},
            "model_size": {"type": "categorical", "choices": [256, 512, 1024]},
        },
        "stages": [{"name": "grid", "strategy": "grid"}],
        "resources": {"max_concurrent_trials": 2, "heartbeat_interval": 1.0},
    }
    if kind == "pg_restart":  # a restart can cost every worker in flight its connection
        spec["retries"] = {"max_attempts": 4}
    path = directory / f"{runner}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def runner_arg(runner: str) -> str:
    return f"replay:{NMTLC_FILE}" if runner == "replay" else "noop"


class Case:
    """One (kind, runner, store) run: the sweep, its injections and the bookkeeping."""

    def __init__(self, kind: str, runner: str, url: str, label: str, home: Path, n: int) -> None:
        self.kind, self.runner, self.url, self.home = kind, runner, url, home
        self.result = CaseResult(kind, runner, label, n)
        self.completed: dict[int, float | None] = {}  # seen COMPLETED before an injection
        self.spec = spec_file(home.parent, runner, kind)
        self.rng = random.Random(hash((kind, runner, label)) & 0xFFFF)

    def sweepctl(self, *args: str) -> subprocess.Popen[str]:
        extra = ["--db", self.url, "--runner", runner_arg(self.runner)]
        if self.kind == "orchestrator_kill":
            extra += ["--backend", ORCHESTRATOR_BACKEND]
        step = STEP_SECONDS[self.runner] * TRIAL_SCALE.get(self.kind, 1.0)
        return start_sweepctl([*args, *extra], self.home, step)

    def trials(self) -> list[Any]:
        return stored_trials(self.url, SWEEP)

    def snapshot(self) -> None:
        for trial in self.trials():
            if trial.state is TrialState.COMPLETED:
                self.completed[trial.id] = trial.objective

    def wait(self, predicate: Any, timeout: float = 120.0) -> Any:
        return poll_until(predicate, timeout, every=0.05)

    def running(self) -> list[Any]:
        return [t for t in self.trials() if t.state is TrialState.RUNNING]

    def finish(self, process: subprocess.Popen[str]) -> int:
        """Let the sweep end; resume it while it stops short (a sweep FAILED by a long
        outage is resumed, as its user would)."""
        code, said = self.outcome(process)
        for _ in range(3):
            with Store(self.url, read_only=True) as store:
                state = store.get_sweep(SWEEP).state.value
            if state == "COMPLETED":
                break
            self.result.notes.append(f"ended {state} (exit {code}: {said}); resumed")
            code, said = self.outcome(self.sweepctl("resume", SWEEP))
        return code

    @staticmethod
    def outcome(process: subprocess.Popen[str]) -> tuple[int, str]:
        """Exit code and the last line it wrote to stderr (the one-line error, if any)."""
        _, err = process.communicate(timeout=900)
        lines = [line for line in err.splitlines() if line.strip()]
        return process.returncode, lines[-1] if lines else ""


def inject_worker_fault(case: Case, process: subprocess.Popen[str], sig: signal.Signals) -> None:
    """Each fault hits the worker process of a first attempt that is RUNNING (the pid its
    first heartbeat recorded), so every injection lands on a trial in flight and never on
    a retry it caused; it counts when that trial ends FAILED/worker_lost."""
    for _ in range(case.result.injections):
        if process.poll() is not None:
            case.result.notes.append("the sweep ended before every injection")
            break
        time.sleep(case.rng.uniform(0.3, 1.5))
        victims = case.wait(lambda: first_attempts_running(case), timeout=60)
        if not victims:
            continue
        case.snapshot()
        victim = case.rng.choice(victims)
        os.kill(worker_pid(victim), sig)
        injected = time.monotonic()
        retried = case.wait(lambda v=victim.id: [t for t in case.trials() if t.retry_of == v], 60)
        if retried:
            case.result.recover_s.append(round(time.monotonic() - injected, 2))
        ended = case.wait(lambda v=victim.id: finished_as(case, v), 30)
        if ended is not None and ended.failure_kind == "worker_lost":
            case.result.landed += 1
        else:
            state = ended.state.value if ended is not None else "unfinished"
            case.result.notes.append(f"trial {victim.id} ended {state}, not worker_lost")


def first_attempts_running(case: Case) -> list[Any]:
    return [
        t
        for t in case.trials()
        if t.state is TrialState.RUNNING and t.attempt == 1 and t.worker is not None
    ]


def finished_as(case: Case, trial_id: int) -> Any:
    return next((t for t in case.trials() if t.id == trial_id and t.state.is_finished), None)


def inject_orchestrator_kill(case: Case, process: subprocess.Popen[str]) -> subprocess.Popen[str]:
    for _ in range(case.result.injections):
        known = {t.id for t in case.trials()}
        started = case.wait(lambda k=known: [t for t in case.running() if t.id not in k], 120)
        if process.poll() is not None or not started:
            case.result.notes.append("the sweep ended before every injection")
            break
        time.sleep(case.rng.uniform(0.0, 2.0))
        case.snapshot()
        process.send_signal(signal.SIGKILL)
        process.wait()
        case.result.landed += 1
        killed = time.monotonic()
        before = {t.id for t in case.trials()}
        process = case.sweepctl("resume", SWEEP)
        fresh = case.wait(lambda b=before: [t for t in case.running() if t.id not in b], 120)
        if fresh:
            case.result.recover_s.append(round(time.monotonic() - killed, 2))
    return process


def inject_pg_restarts(case: Case, process: subprocess.Popen[str]) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    for _ in range(case.result.injections):
        if process.poll() is not None:
            case.result.notes.append("the sweep ended before every injection")
            break
        time.sleep(case.rng.uniform(0.5, 2.0))
        case.snapshot()
        done = {t.id for t in case.trials() if t.state is TrialState.COMPLETED}
        command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"]
        subprocess.run(command, check=True, capture_output=True)
        case.result.landed += 1
        restarted = time.monotonic()
        more = case.wait(lambda d=done: new_completions(case, d), 120)
        if more:
            case.result.recover_s.append(round(time.monotonic() - restarted, 2))


def new_completions(case: Case, done: set[int]) -> list[Any]:
    return [t for t in case.trials() if t.state is TrialState.COMPLETED and t.id not in done]


def run_case(kind: str, runner: str, store: str, injections: int) -> CaseResult:
    with tempfile.TemporaryDirectory(prefix="sweepctl-faults-") as tmp, pg_database(store) as url:
        home = Path(tmp) / "home"
        url = url or f"sqlite:///{tmp}/store.db"
        case = Case(kind, runner, url, store, home, injections)
        started = time.monotonic()
        process = case.sweepctl("launch", str(case.spec))
        if kind == "orchestrator_kill":
            process = inject_orchestrator_kill(case, process)
        elif kind == "pg_restart":
            inject_pg_restarts(case, process)
        else:
            sig = signal.SIGKILL if kind == "worker_kill" else signal.SIGSTOP
            inject_worker_fault(case, process, sig)
        case.finish(process)
        case.result.wall_s = round(time.monotonic() - started, 1)
        account(case)
        return case.result


def account(case: Case) -> None:
    """The record after the sweep ended, against what was seen before each injection."""
    trials = case.trials()
    by_id = {t.id: t for t in trials}
    result = case.result
    result.completed_lost = sum(
        1
        for trial_id, objective in case.completed.items()
        if trial_id not in by_id
        or by_id[trial_id].state is not TrialState.COMPLETED
        or by_id[trial_id].objective != objective
    )
    finished = Counter(
        tuple(sorted(t.params.items()))
        for t in trials
        if t.state in (TrialState.COMPLETED, TrialState.PRUNED)
    )
    result.trained_twice = sum(1 for count in finished.values() if count > 1)
    result.completed_points = len(finished)
    result.unfinished_left = sum(not t.state.is_finished for t in trials)
    result.attempts_retried = sum(t.attempt > 1 for t in trials)
    with Store(case.url, read_only=True) as store:
        sweep = store.get_sweep(SWEEP)
    result.final_state = sweep.state.value
    result.given_up = sum(int((s.summary or {}).get("given_up", 0)) for s in sweep.stages)


def render(results: list[CaseResult], load: list[dict[str, Any]]) -> str:
    lines = [
        "| fault | runner | store | landed | completed lost | trained twice | "
        "RUNNING left | retried | given up | points done | end | recover median / max (s) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        recover = "-"
        if r.recover_s:
            recover = f"{statistics.median(r.recover_s):.1f} / {max(r.recover_s):.1f}"
        lines.append(
            f"| {r.kind} | {r.runner} | {r.store} | {r.landed}/{r.injections} | "
            f"{r.completed_lost} | "
            f"{r.trained_twice} | {r.unfinished_left} | {r.attempts_retried} | {r.given_up} | "
            f"{r.completed_points}/{POINTS} | {r.final_state} | {recover} |"
        )
    if load:
        lines += [
            "",
            "| store | sweeps x trials | writers | writes | lock errors | lost rows "
            "| p50 write (ms) | p99 write (ms) | wall (s) |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in load:
            lines.append(
                f"| {row['store']} | {row['sweeps']} x {row['trials']} | {row['writers']} | "
                f"{row['writes']} | {row['lock_errors']} | {row['lost_rows']} | "
                f"{row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['wall_s']:.1f} |"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--injections", type=int, default=20)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--runners", default="noop,replay")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--load", action="store_true", help="add the store load row")
    parser.add_argument("--orchestrator-backend", choices=["inline", "ray"], default="inline")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    global ORCHESTRATOR_BACKEND
    ORCHESTRATOR_BACKEND = args.orchestrator_backend
    results = []
    for kind in args.kinds.split(","):
        for store in args.stores.split(","):
            if kind == "pg_restart" and store != "postgresql":
                continue
            for runner in args.runners.split(","):
                result = run_case(kind, runner, store, args.injections)
                print(json.dumps(asdict(result)), flush=True)
                results.append(result)
    load = [load_row(store) for store in args.stores.split(",")] if args.load else []
    print(render(results, load))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"cases": [asdict(r) for r in results], "load": load}
        args.json.parent.mkdir(parents=True, exist_ok=True)  # a fresh clone has no bench/results/
        args.json.write_text(json.dumps(payload, indent=2))
    bad = [r for r in results if r.completed_lost or r.trained_twice or r.unfinished_left]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
