"""Real processes for fault tests: a `sweepctl launch` subprocess on the Ray backend, its
Ray worker processes, and waiting on what the store says."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import yaml

from sweepctl.storage import Store, TrialState, owner_place
from tests.conftest import REPO

ANALYTIC = "python:tests.analytic:run"
SPACE = {
    "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
    "weight_decay": {"type": "float", "low": 0.0, "high": 0.1},
    "warmup_steps": {"type": "int", "low": 0, "high": 500},
}


def analytic_grid_spec(path: Path, name: str, points: int = 3, **extra: Any) -> Path:
    """A grid of `points` learning rates on the analytic runner (4 evaluations a trial)."""
    rates = [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4][:points]
    spec = {
        "name": name,
        "model": "analytic",
        "dataset": {"path": "analytic", "text_fields": ["x"]},
        "training": {"learning_rate": 2.0e-5, "weight_decay": 0.01, "warmup_steps": 100},
        "objective": {"metric": "loss"},
        "search_space": SPACE,
        "stages": [
            {
                "name": "grid",
                "strategy": "grid",
                "parameters": ["learning_rate"],
                "values": {"learning_rate": rates},
            }
        ],
        "tracking": {"wandb": {"mode": "disabled"}},
        **extra,
    }
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def tiny_one_point_grid(
    tiny_spec: dict[str, Any], name: str, training: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """The tiny BERT spec (conftest.tiny_spec) as a one-point grid at learning rate 1e-3:
    one configuration, so every row of the sweep is a try of it."""
    return {
        **tiny_spec,
        "name": name,
        "training": {**tiny_spec["training"], **training},
        "search_space": {"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2}},
        "stages": [
            {
                "name": "g",
                "strategy": "grid",
                "parameters": ["learning_rate"],
                "values": {"learning_rate": [1e-3]},
            }
        ],
        **extra,
    }


def start_sweepctl(
    args: list[str], home: Path, step_seconds: float = 0.3, **env: str
) -> subprocess.Popen[str]:
    environment = {
        **os.environ,
        "SWEEPCTL_HOME": str(home),
        "SWEEPCTL_REPLAY_STEP_SECONDS": str(step_seconds),
        "PYTHONPATH": str(REPO),
        **env,
    }
    environment.pop("RAY_ADDRESS", None)
    return subprocess.Popen(
        [sys.executable, "-m", "sweepctl", *args],
        cwd=REPO,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def poll_until(predicate: Callable[[], Any], timeout: float, every: float = 0.1) -> Any:
    """The predicate's first truthy value, or None once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return None


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    value = poll_until(predicate, timeout)
    if not value:
        raise AssertionError(f"timed out waiting for {what}")
    return value


def stored_trials(url: str, sweep: str) -> list[Any]:
    """The sweep's trial rows, or none while the file or its schema is not there yet."""
    try:
        with Store(url, read_only=True) as store:
            return store.list_trials(sweep)
    except Exception:
        return []


def running_trials(url: str, sweep: str) -> list[Any]:
    return [t for t in stored_trials(url, sweep) if t.state is TrialState.RUNNING]


def worker_pid(trial: Any) -> int:
    """The pid of the process a trial's first heartbeat recorded (`worker@host:pid`)."""
    pid = owner_place(trial.worker or "")[1]
    assert pid is not None, f"trial {trial.id} has no worker on record"
    return pid


def trial_workers(process: subprocess.Popen[str]) -> list[psutil.Process]:
    """Ray worker processes of `process`'s private Ray that are executing a trial."""
    found = []
    for child in psutil.Process(process.pid).children(recursive=True):
        try:
            if "ray::execute_job" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def finish(process: subprocess.Popen[str], timeout: float = 120.0) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err
