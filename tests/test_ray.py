"""Sweeps through real Ray workers: concurrency, an end-to-end tiny-BERT sweep, GPU placement.

One local Ray session (4 logical CPUs, more than the machine has: these tests check
scheduling, not speed) serves the tests that run on one node, so its start-up is paid once.
The GPU test builds its own two-node cluster with fake GPUs, so it ends that session first
and runs last; the session fixture starts it again should a test ever run after it.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
import pytest
import ray
import yaml
from ray.cluster_utils import Cluster

from sweepctl.cli import main
from sweepctl.orchestrator.backends import RayBackend
from sweepctl.orchestrator.sweep import SweepRun, launch
from sweepctl.spec.models import SweepSpec, spec_to_dict
from sweepctl.storage import Store, SweepState, TrialState
from sweepctl.workers.job import JobResult, TrialJob
from tests import analytic

STEP_SECONDS = 0.1  # the analytic runner records 4 evaluations: about 0.4 s per trial
LEARNING_RATES = [1e-5, 2e-5, 5e-5]
WEIGHT_DECAYS = [0.0, 0.01, 0.05]
WARMUPS = [100, 200]


@pytest.fixture(scope="module")
def _ray_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        # Ray workers inherit the environment the session was started with, and nothing later.
        patch.setenv("SWEEPCTL_REPLAY_STEP_SECONDS", str(STEP_SECONDS))
        yield patch
        if ray.is_initialized():
            ray.shutdown()


@pytest.fixture
def local_ray(_ray_module: pytest.MonkeyPatch) -> None:
    """The module's one local session, started by its first test (and again only if the GPU
    test, which needs a cluster of its own, ended it and another test followed)."""
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)


def _analytic_spec(name: str) -> SweepSpec:
    """A spec for tests.analytic: model and data are never loaded, only validated."""
    return SweepSpec.model_validate(
        {
            "name": name,
            "model": "unused",
            "dataset": {"path": "csv", "data_files": {"train": "unused.csv"}, "text_fields": ["t"]},
            "training": {"learning_rate": 2e-5, "weight_decay": 0.0, "warmup_steps": 100},
            "objective": {"metric": "loss"},
            "search_space": {
                "learning_rate": {"type": "float", "low": 1e-6, "high": 1e-3, "log": True},
                "weight_decay": {"type": "float", "low": 0.0, "high": 0.1},
                "warmup_steps": {"type": "int", "low": 0, "high": 500},
            },
            "stages": [
                {
                    "name": "grid",
                    "strategy": "grid",
                    "values": {
                        "learning_rate": LEARNING_RATES,
                        "weight_decay": WEIGHT_DECAYS,
                        "warmup_steps": WARMUPS,
                    },
                }
            ],
            "resources": {"cpus_per_trial": 0.5, "max_concurrent_trials": 4},
        }
    )


def _max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    """The largest number of intervals open at one instant (an end before a start on ties)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak


def test_grid_runs_every_point_once_with_four_concurrent_workers(
    local_ray: None, home: Path, sqlite_url: str
) -> None:
    spec = _analytic_spec("grid4")
    store = Store(sqlite_url)
    try:
        run = SweepRun(
            spec,
            store,
            RayBackend(cpus_per_trial=0.5, gpus_per_trial=0),
            sqlite_url,
            str(home),
            runner="python:tests.analytic:run",
        )
        assert launch(run) is SweepState.COMPLETED
        trials = store.list_trials("grid4")
    finally:
        store.close()

    assert ray.is_initialized()  # the backend left the session it did not start running
    assert len(trials) == 18
    assert {t.state for t in trials} == {TrialState.COMPLETED}
    points = [
        (t.params["learning_rate"], t.params["weight_decay"], t.params["warmup_steps"])
        for t in trials
    ]
    assert len(set(points)) == 18
    assert set(points) == set(itertools.product(LEARNING_RATES, WEIGHT_DECAYS, WARMUPS))
    study = optuna.load_study(study_name="grid4", storage=sqlite_url)
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == len(study.trials) == 18
    for trial in trials:
        assert trial.objective == pytest.approx(analytic.loss(trial.params))
    told = {t.number: t.value for t in complete}
    assert told == {t.optuna_trial_number: pytest.approx(t.objective) for t in trials}

    intervals = [(t.started_at, t.finished_at) for t in trials if t.started_at and t.finished_at]
    assert len(intervals) == 18
    peak = _max_overlap(intervals)
    assert 3 <= peak <= 4, peak  # they really overlapped, and never beyond the limit


def test_staged_tiny_bert_sweep_through_the_cli_and_its_export_reproduces(
    local_ray: None,
    tiny_spec: dict[str, Any],
    write_spec: Any,
    home: Path,
    sqlite_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = {
        **tiny_spec,
        "training": {**tiny_spec["training"], "weight_decay": 0.0},
        "search_space": {
            "learning_rate": {
                "type": "float",
                "low": 1e-4,
                "high": 1e-2,
                "log": True,
                "ofat": [1e-2],
            },
            "weight_decay": {"type": "float", "low": 0.0, "high": 0.1, "ofat": [0.1]},
        },
        "stages": [
            {"name": "screen", "strategy": "ofat"},
            {"name": "coarse", "strategy": "grid", "parameters": {"top": 1, "from": "screen"}},
            {
                "name": "tune",
                "strategy": "bayes",
                "parameters": {"top": 2, "from": "screen"},
                "n_trials": 2,
                "warm_start": True,
            },
        ],
        "resources": {"cpus_per_trial": 1, "max_concurrent_trials": 2},
    }
    assert main(["launch", str(write_spec(spec)), "--db", sqlite_url]) == 0
    assert ray.is_initialized()

    with Store(sqlite_url) as store:
        sweep = store.get_sweep("tiny")
        trials = store.list_trials("tiny")
    assert sweep.state is SweepState.COMPLETED
    assert [(s.name, s.state) for s in sweep.stages] == [
        ("screen", SweepState.COMPLETED),
        ("coarse", SweepState.COMPLETED),
        ("tune", SweepState.COMPLETED),
    ]
    per_stage = {
        name: sum(t.stage == name for t in trials) for name in ("screen", "coarse", "tune")
    }
    # the coarse grid is the top parameter's two values: OFAT already trained the ones on
    # its line, and those are answered from the OFAT runs (orchestrator/reuse.py)
    reused = (sweep.stages[1].summary or {}).get("reused", 0)
    assert per_stage["coarse"] + reused == 2 and reused >= 1
    assert (per_stage["screen"], per_stage["tune"]) == (3, 2)
    assert len(trials) == 5 + per_stage["coarse"]
    assert len({tuple(sorted(t.params.items())) for t in trials}) == len(trials)
    assert {t.state for t in trials} == {TrialState.COMPLETED}
    assert all([e.epoch for e in t.evaluations] == [1.0, 2.0] for t in trials)
    screen = [t.params for t in trials if t.stage == "screen"]
    assert sorted(map(sorted, (p.items() for p in screen))) == sorted(
        sorted(p.items())
        for p in (
            {"learning_rate": 1e-3, "weight_decay": 0.0},
            {"learning_rate": 1e-2, "weight_decay": 0.0},
            {"learning_rate": 1e-3, "weight_decay": 0.1},
        )
    )

    exported = tmp_path / "best.yaml"
    assert main(["export", "tiny", "--db", sqlite_url, "-o", str(exported)]) == 0
    capsys.readouterr()  # launch and export printed tables; only the record is wanted
    assert main(["trial", str(exported), "--db", sqlite_url, "--json", "--no-progress"]) == 0
    record = json.loads(capsys.readouterr().out)

    best = max(trials, key=lambda t: (t.objective, -t.number))  # f1: the earlier wins a tie
    exported_spec = yaml.safe_load(exported.read_text())
    assert exported_spec["name"] == "tiny-best"
    assert f"reproduces trial {best.id} " in exported_spec["description"]
    assert record["state"] == "COMPLETED"
    assert record["objective"] == pytest.approx(best.objective, abs=1e-6)
    for name, value in best.params.items():
        assert record["config"]["training"][name] == pytest.approx(value, rel=1e-12)
    assert record["config"]["training"] == best.config["training"]
    assert record["config"]["model_args"] == best.config["model_args"]


def _noop_job(number: int, db_url: str, home: Path) -> TrialJob:
    spec = _analytic_spec("gpu")
    return TrialJob(
        sweep="gpu",
        stage="grid",
        optuna_number=number,
        params={},
        spec=spec_to_dict(spec),
        db_url=db_url,
        home=str(home),
        runner="noop",
    )


def _collect(backend: RayBackend, count: int, deadline_s: float) -> list[JobResult]:
    results: list[JobResult] = []
    deadline = time.monotonic() + deadline_s
    while len(results) < count and time.monotonic() < deadline:
        results.extend(backend.poll(timeout=1.0))
    return results


def _own_cluster(num_cpus: int, num_gpus: int) -> Iterator[Cluster]:
    """A cluster of its own: the shared single-node session has to end first."""
    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": num_cpus, "num_gpus": num_gpus, "include_dashboard": False},
    )
    yield cluster
    if ray.is_initialized():
        ray.shutdown()
    cluster.shutdown()


@pytest.fixture
def head_without_gpu() -> Iterator[Cluster]:
    yield from _own_cluster(num_cpus=1, num_gpus=0)


def test_gpu_trials_wait_for_a_gpu_and_get_one_each(
    head_without_gpu: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # RayBackend starts this Ray session, so it forwards the setting to the workers.
    monkeypatch.setenv("SWEEPCTL_REPLAY_STEP_SECONDS", "1.5")
    db_url = f"sqlite:///{tmp_path / 'gpu.db'}"
    with Store(db_url) as store:  # schema and sweep first: workers only add trials
        store.create_sweep("gpu", spec_to_dict(_analytic_spec("gpu")), [("grid", "grid")])
    backend = RayBackend(cpus_per_trial=1, gpus_per_trial=1, address=head_without_gpu.address)
    try:
        backend.start(_noop_job(9, db_url, tmp_path))
        assert backend.poll(timeout=2.0) == []  # no node has a GPU: the trial never starts
        assert backend.stop_all() == [9]

        head_without_gpu.add_node(num_cpus=2, num_gpus=2)
        head_without_gpu.wait_for_nodes()
        for number in (0, 1, 2):
            backend.start(_noop_job(number, db_url, tmp_path))
        results = _collect(backend, 3, deadline_s=90.0)
    finally:
        backend.shutdown()

    assert sorted(r.optuna_number for r in results) == [0, 1, 2]
    assert {r.state for r in results} == {"COMPLETED"}
    devices = {r.optuna_number: r.visible_devices for r in results}
    # exactly one GPU id each; only the added node has GPUs, so that is where they ran
    assert set(devices.values()) <= {"0", "1"}, devices
    with Store(db_url) as store:
        trials = {t.optuna_trial_number: t for t in store.list_trials("gpu")}
    assert sorted(trials) == [0, 1, 2]  # the cancelled trial never ran, even once GPUs came
    spans = {n: (t.started_at, t.finished_at) for n, t in trials.items()}
    first, second, last = sorted(spans, key=lambda n: spans[n][0])
    # two GPUs: the first two trials run side by side, on different GPUs ...
    assert spans[second][0] < spans[first][1]
    assert devices[first] != devices[second]
    # ... and the third waits until one of them has handed its GPU back
    assert spans[last][0] >= min(spans[first][1], spans[second][1])


@pytest.fixture
def head_with_one_gpu() -> Iterator[Cluster]:
    """One node declaring one fake GPU and more CPUs than trials, so the GPU decides."""
    yield from _own_cluster(num_cpus=8, num_gpus=1)


def test_a_quarter_gpu_per_trial_packs_four_trials_on_one_device_and_the_fifth_waits(
    head_with_one_gpu: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWEEPCTL_REPLAY_STEP_SECONDS", "8.0")  # outlasts worker start-up
    db_url = f"sqlite:///{tmp_path / 'packed.db'}"
    with Store(db_url) as store:
        store.create_sweep("gpu", spec_to_dict(_analytic_spec("gpu")), [("grid", "grid")])
    backend = RayBackend(cpus_per_trial=1, gpus_per_trial=0.25, address=head_with_one_gpu.address)
    try:
        for number in range(5):
            backend.start(_noop_job(number, db_url, tmp_path))
        results = _collect(backend, 5, deadline_s=120.0)
    finally:
        backend.shutdown()

    assert sorted(r.optuna_number for r in results) == [0, 1, 2, 3, 4]
    assert {r.visible_devices for r in results} == {"0"}  # all on the one device
    with Store(db_url) as store:
        trials = sorted(store.list_trials("gpu"), key=lambda t: t.started_at)
    packed, waiting = trials[:4], trials[4]
    # the first four overlap: each started before any of them finished
    assert max(t.started_at for t in packed) < min(t.finished_at for t in packed)
    # the fifth started only once one of them had handed its quarter back
    assert waiting.started_at >= min(t.finished_at for t in packed)
