"""A sweep outlives its orchestrator: SIGKILL mid-sweep then `resume`, and `cancel` from
another process. The orchestrator runs as a real `sweepctl launch` subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
import yaml

from sweepctl.cli import main
from sweepctl.orchestrator.backends import InlineBackend
from sweepctl.orchestrator.sweep import CANCEL_REASON, CRASH_REASON, StageProposer, SweepRun, resume
from sweepctl.spec.models import spec_to_dict
from sweepctl.storage import Store, SweepState, TrialState
from sweepctl.workers.execute import execute_job
from sweepctl.workers.job import TrialJob
from tests.analytic import loss
from tests.conftest import REPO
from tests.test_strategies import ANALYTIC, SPACE, analytic_spec

STAGES = [
    {"name": "screen", "strategy": "ofat"},
    {
        "name": "bayes",
        "strategy": "bayes",
        "parameters": {"top": 2, "from": "screen"},
        "n_trials": 4,
        "warm_start": True,
        "seed": 1,
    },
]


def write_analytic_spec(tmp_path: Path, name: str) -> Path:
    spec = {
        "name": name,
        "model": "analytic",
        "dataset": {"path": "analytic", "text_fields": ["x"]},
        "training": {"learning_rate": 2.0e-5, "weight_decay": 0.01, "warmup_steps": 100},
        "objective": {"metric": "loss"},
        "search_space": SPACE,
        "stages": STAGES,
        "tracking": {"wandb": {"mode": "disabled"}},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def start_launch(spec: Path, url: str, home: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SWEEPCTL_HOME": str(home),
        "SWEEPCTL_REPLAY_STEP_SECONDS": "0.1",
        "PYTHONPATH": str(REPO),
    }
    command = [
        sys.executable,
        "-m",
        "sweepctl",
        "launch",
        str(spec),
        "--db",
        url,
        "--backend",
        "inline",
        "--runner",
        ANALYTIC,
    ]
    return subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def wait_for_completed(url: str, sweep: str, count: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, "the sweep ended before the test could interrupt it"
        store = Store(url)
        try:
            if sweep in store.sweep_names():
                done = [t for t in store.list_trials(sweep) if t.state is TrialState.COMPLETED]
                if len(done) >= count:
                    return
        finally:
            store.close()
        time.sleep(0.1)
    pytest.fail(f"fewer than {count} trials completed in time")


def test_sigkill_then_resume_keeps_every_completed_trial_and_duplicates_none(
    tmp_path: Path, home: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    process = start_launch(write_analytic_spec(tmp_path, "killed"), url, home)
    wait_for_completed(url, "killed", 3, process)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    store = Store(url)
    before = {
        t.id: t.objective for t in store.list_trials("killed") if t.state is TrialState.COMPLETED
    }
    assert store.get_sweep("killed").state is SweepState.RUNNING  # nobody told it otherwise

    assert main(["resume", "killed", "--db", url, "--backend", "inline", "--runner", ANALYTIC]) == 0

    trials = store.list_trials("killed")
    after = {t.id: t for t in trials}
    assert all(
        after[i].state is TrialState.COMPLETED and after[i].objective == v
        for i, v in before.items()
    )
    completed = [t for t in trials if t.state is TrialState.COMPLETED]
    screen = [t for t in completed if t.stage == "screen"]
    configs = Counter(tuple(sorted(t.params.items())) for t in screen)
    assert len(screen) == 7 and set(configs.values()) == {1}  # every OFAT point exactly once
    assert len([t for t in completed if t.stage == "bayes"]) == 4
    interrupted = [t for t in trials if t.state is TrialState.CANCELLED]
    assert len(interrupted) <= 1 and all(t.error == CRASH_REASON for t in interrupted)
    assert not [t for t in trials if t.state is TrialState.FAILED]
    assert store.get_sweep("killed").state is SweepState.COMPLETED
    study = optuna.load_study(study_name="killed", storage=url)
    states = Counter(t.state for t in study.get_trials())
    assert states[optuna.trial.TrialState.COMPLETE] == 11
    assert states[optuna.trial.TrialState.RUNNING] == 0
    store.close()


def test_cancel_from_another_process_stops_the_sweep_and_marks_its_trials(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    process = start_launch(write_analytic_spec(tmp_path, "stopped"), url, home)
    wait_for_completed(url, "stopped", 2, process)
    assert main(["cancel", "stopped", "--db", url]) == 0
    assert "CANCELLED" in capsys.readouterr().out
    assert process.wait(timeout=60) == 1
    store = Store(url)
    sweep = store.get_sweep("stopped")
    assert sweep.state is SweepState.CANCELLED
    assert sweep.stages[0].state is SweepState.CANCELLED
    assert sweep.stages[1].state is SweepState.PENDING
    trials = store.list_trials("stopped")
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.PENDING)]
    assert len([t for t in trials if t.state is TrialState.COMPLETED]) < 7
    assert not [t for t in trials if t.state is TrialState.FAILED]
    cancelled = [t for t in trials if t.state is TrialState.CANCELLED]
    assert all(t.error == CANCEL_REASON for t in cancelled)
    store.close()


def test_resume_tells_optuna_what_a_finished_worker_stored_instead_of_rerunning_it(
    tmp_path: Path,
) -> None:
    """The crash window between a worker storing COMPLETED and the orchestrator telling
    Optuna: resume must not run that configuration a second time."""
    spec = analytic_spec("window", [{"name": "screen", "strategy": "ofat"}])
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    store = Store(url)
    run = SweepRun(spec, store, InlineBackend(), url, str(tmp_path / "home"), ANALYTIC)
    store.create_sweep("window", spec_to_dict(spec), [("screen", "ofat")])
    store.set_sweep_state("window", SweepState.RUNNING)
    trial, _ = StageProposer(run, spec.stages[0]).ask()  # the baseline, left RUNNING in Optuna
    job = TrialJob(
        "window",
        "screen",
        trial.number,
        dict(trial.params),
        spec_to_dict(spec),
        url,
        str(tmp_path / "home"),
        ANALYTIC,
    )
    assert execute_job(job).state == "COMPLETED"  # stored, then the orchestrator "died"

    assert resume(run) is SweepState.COMPLETED
    study_trials = run.study.get_trials()
    assert [t.state for t in study_trials].count(optuna.trial.TrialState.COMPLETE) == 7
    assert study_trials[0].value == pytest.approx(loss(job.params))
    stored = store.list_trials("window")
    assert len(stored) == 7 and {t.state for t in stored} == {TrialState.COMPLETED}
    store.close()
