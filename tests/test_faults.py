"""Faults injected into real sweeps: a worker SIGKILLed (as the OOM killer does) or
SIGSTOPped, a trial past its time limit, a GPU nobody has, SIGTERM of `launch`. Each runs
`sweepctl launch` as a subprocess on its own private Ray and checks the record after."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from sweepctl.cli import main
from sweepctl.spec.models import load_spec, spec_to_dict
from sweepctl.storage import FailureKind, Store, SweepState, TrialState
from sweepctl.storage.optuna_adapter import optuna_state
from tests.fault_helpers import (
    ANALYTIC,
    analytic_grid_spec,
    finish,
    running_trials,
    start_sweepctl,
    stored_trials,
    tiny_one_point_grid,
    trial_workers,
    wait_for,
    worker_pid,
)

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def assert_store_and_optuna_agree(url: str, sweep: str) -> None:
    with Store(url) as store:
        trials = store.list_trials(sweep)
    assert not [t for t in trials if not t.state.is_finished], "unfinished rows left"
    study = optuna.load_study(study_name=sweep, storage=url)
    told = {t.number: t.state for t in study.get_trials()}
    for trial in trials:
        assert told[trial.optuna_trial_number] is optuna_state(trial.state), trial


def kill_first_worker(url: str, sweep: str, process: Any, sig: signal.Signals) -> int:
    """Wait for a RUNNING trial, send `sig` to the process its first heartbeat named (a
    Ray worker of `process`, not the orchestrator); the trial's Optuna number."""
    trial = wait_for(
        lambda: [t for t in running_trials(url, sweep) if t.worker], "a running trial"
    )[0]
    pid = worker_pid(trial)
    assert pid in {worker.pid for worker in trial_workers(process)}
    os.kill(pid, sig)
    return trial.optuna_trial_number


@pytest.mark.parametrize(("runner", "step_seconds"), [(ANALYTIC, 0.3), ("noop", 1.5)])
def test_a_sigkilled_worker_is_recorded_lost_and_its_point_trained_by_a_second_attempt(
    runner: str,
    step_seconds: float,
    tmp_path: Path,
    home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    spec = analytic_grid_spec(tmp_path / "spec.yaml", "killed")
    args = ["launch", str(spec), "--db", url, "--runner", runner]
    process = start_sweepctl(args, home, step_seconds=step_seconds)
    killed = kill_first_worker(url, "killed", process, signal.SIGKILL)
    code, _out, err = finish(process)
    assert code == 0, err

    with Store(url) as store:
        trials = store.list_trials("killed")
        summary = store.get_sweep("killed").stages[0].summary or {}
    lost = next(t for t in trials if t.optuna_trial_number == killed)
    assert (lost.state, lost.failure_kind, lost.attempt) == (TrialState.FAILED, "worker_lost", 1)
    retry = next(t for t in trials if t.retry_of == lost.id)
    assert (retry.state, retry.attempt, retry.params) == (TrialState.COMPLETED, 2, lost.params)
    completed = Counter(
        t.params["learning_rate"] for t in trials if t.state is TrialState.COMPLETED
    )
    assert completed == {1e-5: 1, 2e-5: 1, 5e-5: 1}  # every point once, none twice
    assert (summary["given_up"], summary["retried"]) == (0, 1)
    assert_store_and_optuna_agree(url, "killed")
    assert main(["show", str(retry.id), "--db", url]) == 0
    shown = capsys.readouterr().out
    assert f"attempt 2 (retries trial {lost.id})" in shown and "ran on worker@" in shown


def test_a_sigkilled_worker_training_a_real_tiny_bert_is_retried_and_completes(
    tmp_path: Path, home: Path, tiny_spec: dict[str, Any]
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    spec = tiny_one_point_grid(tiny_spec, "tinykill", {"num_train_epochs": 12})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    process = start_sweepctl(["launch", str(path), "--db", url], home)
    kill_first_worker(url, "tinykill", process, signal.SIGKILL)
    code, _, err = finish(process, timeout=300)
    assert code == 0, err
    with Store(url) as store:
        trials = store.list_trials("tinykill")
    assert [(t.state, t.failure_kind, t.attempt) for t in trials] == [
        (TrialState.FAILED, "worker_lost", 1),
        (TrialState.COMPLETED, None, 2),
    ]
    assert trials[1].retry_of == trials[0].id and len(trials[1].evaluations) == 12
    assert_store_and_optuna_agree(url, "tinykill")


def test_a_sigstopped_worker_is_lost_after_three_missed_beats_killed_and_retried(
    tmp_path: Path, home: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    resources = {"heartbeat_interval": 0.5}
    spec = analytic_grid_spec(tmp_path / "spec.yaml", "stopped", 2, resources=resources)
    process = start_sweepctl(["launch", str(spec), "--db", url, "--runner", ANALYTIC], home)
    stopped = kill_first_worker(url, "stopped", process, signal.SIGSTOP)
    code, _, err = finish(process)
    assert code == 0, err
    with Store(url) as store:
        trials = store.list_trials("stopped")
    lost = next(t for t in trials if t.optuna_trial_number == stopped)
    assert (lost.state, lost.failure_kind) == (TrialState.FAILED, "worker_lost")
    assert "no heartbeat" in (lost.error or "")
    silent = (lost.finished_at - lost.heartbeat_at).total_seconds()
    assert 1.5 <= silent < 15  # 3 beats of 0.5 s, noticed within a few watchdog periods
    assert any(t.retry_of == lost.id and t.state is TrialState.COMPLETED for t in trials)
    assert_store_and_optuna_agree(url, "stopped")


def test_a_worker_frozen_holding_the_sqlite_write_lock_is_killed_and_the_sweep_completes(
    tmp_path: Path, home: Path
) -> None:
    """The orchestrator's own writes wait behind the frozen lock holder; its watchdog runs
    beside them, kills the holder, and everything that waited goes on."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    resources = {"heartbeat_interval": 0.5, "max_concurrent_trials": 2}
    spec = analytic_grid_spec(tmp_path / "spec.yaml", "frozen", 4, resources=resources)
    runner = "python:tests.frozen_lock:run"
    code, _, err = finish(
        start_sweepctl(["launch", str(spec), "--db", url, "--runner", runner], home)
    )
    assert code == 0, err
    with Store(url) as store:
        trials = store.list_trials("frozen")
        assert store.get_sweep("frozen").state is SweepState.COMPLETED
    frozen = next(t for t in trials if t.params["learning_rate"] == 1e-5 and t.attempt == 1)
    assert (frozen.state, frozen.failure_kind) == (TrialState.FAILED, "worker_lost")
    assert frozen.worker is not None and frozen.worker.startswith("worker@")
    silent = (frozen.finished_at - frozen.heartbeat_at).total_seconds()
    assert silent < 15  # found by its missed beats, not by the 120 s busy timeout
    completed = Counter(
        t.params["learning_rate"] for t in trials if t.state is TrialState.COMPLETED
    )
    assert sorted(completed.values()) == [1, 1, 1, 1]
    assert_store_and_optuna_agree(url, "frozen")


def test_a_trial_handed_to_a_worker_frozen_while_idle_is_failed_after_a_minute_and_retried(
    tmp_path: Path, home: Path
) -> None:
    """A worker stopped between trials is still in Ray's pool; the next trial it is given
    never starts (no first beat), and on a private Ray with room for it that means lost."""
    from sweepctl.orchestrator.watchdog import START_DEADLINE_S

    url = f"sqlite:///{tmp_path / 'store.db'}"
    resources = {"max_concurrent_trials": 2}
    spec = analytic_grid_spec(tmp_path / "spec.yaml", "idle", 4, resources=resources)
    args = ["launch", str(spec), "--db", url, "--runner", ANALYTIC]
    process = start_sweepctl(args, home, step_seconds=1.0)
    done = wait_for(lambda: completed_with_worker(url, "idle"), "a completed trial")[0]
    os.kill(worker_pid(done), signal.SIGSTOP)  # now idle, in the pool
    code, _, err = finish(process, timeout=240)
    assert code == 0, err
    with Store(url) as store:
        trials = store.list_trials("idle")
    # Ray may already have pushed the next trial to that worker before the signal landed:
    # then it had beaten once and is found by its missed beats instead. Either way the
    # point is lost once and trained by its retry.
    [lost] = [t for t in trials if t.state is TrialState.FAILED]
    assert lost.failure_kind == "worker_lost"
    if "no worker started it" in (lost.error or ""):
        waited = (lost.finished_at - lost.created_at).total_seconds()
        assert lost.worker is None and START_DEADLINE_S <= waited < START_DEADLINE_S + 30
    else:
        assert "no heartbeat" in (lost.error or "")
    assert any(t.retry_of == lost.id and t.state is TrialState.COMPLETED for t in trials)
    completed = Counter(
        t.params["learning_rate"] for t in trials if t.state is TrialState.COMPLETED
    )
    assert sorted(completed.values()) == [1, 1, 1, 1]
    assert_store_and_optuna_agree(url, "idle")


def completed_with_worker(url: str, sweep: str) -> list[Any]:
    return [t for t in stored_trials(url, sweep) if t.state is TrialState.COMPLETED and t.worker]


def test_a_trial_past_its_timeout_fails_as_timeout_and_keeps_its_evaluations(
    tmp_path: Path, home: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    spec = analytic_grid_spec(
        tmp_path / "spec.yaml",
        "slow",
        1,
        resources={"trial_timeout": "1.5s", "heartbeat_interval": 0.5},
        retries={"max_attempts": 2, "on": ["timeout"]},
    )
    process = start_sweepctl(
        ["launch", str(spec), "--db", url, "--runner", ANALYTIC], home, step_seconds=1.0
    )
    code, out, _ = finish(process)
    assert code == 1  # nothing succeeded: the sweep FAILED
    with Store(url) as store:
        sweep = store.get_sweep("slow")
        trials = store.list_trials("slow")
    assert [(t.state, t.failure_kind, t.attempt) for t in trials] == [
        (TrialState.FAILED, "timeout", 1),
        (TrialState.FAILED, "timeout", 2),
    ]
    assert all(1 <= len(t.evaluations) < 4 for t in trials)  # kept what it had recorded
    assert sweep.state is SweepState.FAILED and "no trial succeeded" in (sweep.error or "")
    assert (sweep.stages[0].summary or {})["given_up"] == 1
    assert "2 timeout" in out
    assert_store_and_optuna_agree(url, "slow")


def test_a_gpu_request_on_a_machine_without_gpus_is_refused_at_launch_with_nothing_written(
    tmp_path: Path, home: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    spec = analytic_grid_spec(tmp_path / "spec.yaml", "gpu", 1, resources={"gpus_per_trial": 1})
    code, _out, err = finish(
        start_sweepctl(["launch", str(spec), "--db", url, "--runner", ANALYTIC], home)
    )
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("sweepctl:")]
    assert lines == [lines[0]] and "resources.gpus_per_trial" in lines[0]
    assert "Traceback" not in err
    with Store(url) as store:
        assert sum(store.count_rows().values()) == 0


def test_sigterm_of_launch_cancels_its_trials_and_resume_finishes_the_sweep(
    tmp_path: Path, home: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    spec = analytic_grid_spec(tmp_path / "spec.yaml", "termed", 4)
    process = start_sweepctl(["launch", str(spec), "--db", url, "--runner", ANALYTIC], home)
    wait_for(lambda: running_trials(url, "termed"), "a running trial")
    process.send_signal(signal.SIGTERM)
    code, out, _ = finish(process)
    assert code == 1 and "sweepctl resume termed" in out
    with Store(url) as store:
        assert store.get_sweep("termed").state is SweepState.CANCELLED
        trials = store.list_trials("termed")
    assert TrialState.CANCELLED in {t.state for t in trials}
    assert not [t for t in trials if not t.state.is_finished]

    code, _, err = finish(
        start_sweepctl(["resume", "termed", "--db", url, "--runner", ANALYTIC], home)
    )
    assert code == 0, err
    with Store(url) as store:
        trials = store.list_trials("termed")
        assert store.get_sweep("termed").state is SweepState.COMPLETED
    completed = Counter(
        t.params["learning_rate"] for t in trials if t.state is TrialState.COMPLETED
    )
    assert sorted(completed.values()) == [1, 1, 1, 1]
    assert_store_and_optuna_agree(url, "termed")


def test_a_second_orchestrator_is_refused_naming_the_owner(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    spec = analytic_grid_spec(tmp_path / "spec.yaml", "owned", 4)
    process = start_sweepctl(
        ["launch", str(spec), "--db", url, "--runner", ANALYTIC], home, step_seconds=1.0
    )
    try:
        wait_for(lambda: running_trials(url, "owned"), "a running trial")
        assert main(["resume", "owned", "--db", url, "--runner", ANALYTIC]) == 2
        message = capsys.readouterr().err.strip()
        assert message.startswith("sweepctl: error: sweep 'owned' is driven by launch@")
        assert f":{process.pid} since " in message
        assert main(["launch", str(spec), "--db", url, "--if-exists", "resume"]) == 2
    finally:
        code, _, err = finish(process)
    assert code == 0, err
    with Store(url) as store:
        trials = store.list_trials("owned")
    assert len(trials) == 4 and {t.state for t in trials} == {TrialState.COMPLETED}


def test_an_expired_lease_is_taken_over_and_a_live_one_elsewhere_is_not(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    spec = load_spec(analytic_grid_spec(tmp_path / "spec.yaml", "leased", 2))
    with Store(url) as store:  # a sweep another machine's orchestrator is driving
        store.create_sweep("leased", spec_to_dict(spec), [("grid", "grid")])
        store.acquire_lease("leased", "launch@another-host:77", ttl_s=3600)
    args = ["resume", "leased", "--db", url, "--backend", "inline", "--runner", ANALYTIC]
    assert main(args) == 2
    assert "driven by launch@another-host:77" in capsys.readouterr().err

    with Store(url) as store:  # that owner stopped renewing: its lease ran out
        store.renew_lease("leased", "launch@another-host:77", ttl_s=-1)
    assert main(args) == 0
    with Store(url) as store:
        sweep = store.get_sweep("leased")
    assert sweep.state is SweepState.COMPLETED and sweep.owner is None


def test_launch_never_joins_a_ray_cluster_it_finds_on_the_machine(
    tmp_path: Path, home: Path
) -> None:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    try:
        url = f"sqlite:///{tmp_path / 'store.db'}"
        spec = analytic_grid_spec(tmp_path / "spec.yaml", "private", 2)
        code, _, err = finish(
            start_sweepctl(["launch", str(spec), "--db", url, "--runner", ANALYTIC], home)
        )
    finally:
        cluster.shutdown()
    assert code == 0, err
    with Store(url) as store:
        trials = store.list_trials("private")
    clusters = {t.resources["ray_gcs"] for t in trials}
    assert len(trials) == 2 and None not in clusters
    assert cluster.address not in clusters


def test_a_gpu_trial_on_a_joined_cluster_without_gpus_fails_after_a_minute_pending(
    tmp_path: Path, home: Path
) -> None:
    """A joined cluster may grow (an autoscaler), so launch does not refuse; the trial it
    can never place is failed with the reason once it has waited START_DEADLINE_S."""
    from ray.cluster_utils import Cluster

    from sweepctl.orchestrator.watchdog import START_DEADLINE_S

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    try:
        url = f"sqlite:///{tmp_path / 'store.db'}"
        resources = {"gpus_per_trial": 1, "heartbeat_interval": 1.0}
        spec = analytic_grid_spec(tmp_path / "spec.yaml", "nogpu", 1, resources=resources)
        args = ["launch", str(spec), "--db", url, "--runner", ANALYTIC]
        process = start_sweepctl([*args, "--ray-address", cluster.address], home)
        code, _out, err = finish(process, timeout=240)
    finally:
        cluster.shutdown()
    assert code == 1, err  # nothing succeeded: the sweep FAILED, not a silent wait
    with Store(url) as store:
        [trial] = store.list_trials("nogpu")
        sweep = store.get_sweep("nogpu")
    assert (trial.state, trial.failure_kind, trial.attempt) == (TrialState.FAILED, "bad_input", 1)
    assert "resources.gpus_per_trial" in (trial.error or "")
    waited = (trial.finished_at - trial.created_at).total_seconds()
    assert START_DEADLINE_S <= waited < START_DEADLINE_S + 30
    assert sweep.state is SweepState.FAILED
    assert_store_and_optuna_agree(url, "nogpu")


def test_failure_kinds_sort_exceptions_the_way_retries_need() -> None:
    from sweepctl.spec.errors import DataError
    from sweepctl.workers.job import failure_kind_of
    from sweepctl.workers.rows import NonFiniteLossError

    class OutOfMemoryError(RuntimeError):  # the name torch.OutOfMemoryError carries
        pass

    kinds = [
        failure_kind_of(exc)
        for exc in (
            DataError("bad file"),
            NonFiniteLossError("nan"),
            OutOfMemoryError("CUDA"),
            RuntimeError("CUDA out of memory. Tried to allocate"),
            MemoryError(),
            ValueError("boom"),
        )
    ]
    assert kinds == ["bad_input", "nan", "oom", "oom", "oom", "error"]
    assert {k.value for k in FailureKind if k.is_deterministic} == {"error", "nan", "bad_input"}
