"""Stage strategies on a known landscape (tests/analytic.py) and on real NMTLC curves,
through the real orchestrator, Optuna study and store, with the in-process backend."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import optuna
import pytest

from sweepctl.orchestrator.backends import InlineBackend
from sweepctl.orchestrator.search import STAGE_ATTR
from sweepctl.orchestrator.sweep import SweepRun, launch
from sweepctl.spec.models import SweepSpec
from sweepctl.storage import Store, SweepState, TrialState
from tests.conftest import require_shared

ANALYTIC = "python:tests.analytic:run"
SPACE = {
    "learning_rate": {
        "type": "float",
        "low": 1.0e-5,
        "high": 5.0e-5,
        "log": True,
        "ofat": [1.0e-5, 5.0e-5],
    },
    "weight_decay": {"type": "float", "low": 0.0, "high": 0.1, "ofat": [0.0, 0.1]},
    "warmup_steps": {"type": "int", "low": 0, "high": 500, "ofat": [0, 500]},
}


def analytic_spec(name: str, stages: list[dict[str, Any]], **extra: Any) -> SweepSpec:
    data = {
        "name": name,
        "model": "analytic",
        "dataset": {"path": "analytic", "text_fields": ["x"]},
        "training": {
            "learning_rate": 2.0e-5,
            "weight_decay": 0.01,
            "warmup_steps": 100,
            "num_train_epochs": 4,
        },
        "objective": {"metric": "loss"},
        "search_space": copy.deepcopy(SPACE),
        "stages": stages,
        "tracking": {"wandb": {"mode": "disabled"}},
        **extra,
    }
    return SweepSpec.model_validate(data)


def run_sweep(spec: SweepSpec, tmp_path: Path, runner: str = ANALYTIC) -> tuple[SweepRun, Store]:
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    store = Store(url)
    run = SweepRun(spec, store, InlineBackend(), url, str(tmp_path / "home"), runner)
    assert launch(run) is SweepState.COMPLETED
    return run, store


def stage_of(store: Store, sweep: str, stage: str) -> list[Any]:
    return [t for t in store.list_trials(sweep) if t.stage == stage]


def test_ofat_runs_baseline_plus_two_per_parameter_and_ranks_by_impact(tmp_path: Path) -> None:
    spec = analytic_spec("ofat", [{"name": "screen", "strategy": "ofat"}])
    _run, store = run_sweep(spec, tmp_path)
    trials = stage_of(store, "ofat", "screen")
    assert len(trials) == 1 + 2 * 3 and {t.state for t in trials} == {TrialState.COMPLETED}
    baseline = {"learning_rate": 2.0e-5, "weight_decay": 0.01, "warmup_steps": 100}
    moved = [{k for k in baseline if t.params[k] != baseline[k]} for t in trials]
    assert sorted(map(len, moved)) == [0, 1, 1, 1, 1, 1, 1]  # one factor at a time
    summary = store.get_sweep("ofat").stages[0].summary["ofat"]
    ranking = [p["name"] for p in summary["ranking"]]
    assert ranking == ["learning_rate", "weight_decay", "warmup_steps"]
    impacts = {p["name"]: p["impact"] for p in summary["ranking"]}
    # loss = 1 + 3|log10 lr + 4.3| + 10|wd - 0.05| + ...: lr 2e-5 -> 5e-5 gains 3*0.398
    assert impacts["learning_rate"] == pytest.approx(3 * (0.69897 - 0.30103) - 0.0, abs=0.01)
    assert impacts["weight_decay"] == pytest.approx(0.1, abs=1e-6)
    assert {p["name"]: p["best_value"] for p in summary["ranking"]}["learning_rate"] == 5.0e-5
    assert not any(p["noise"] for p in summary["ranking"])  # one seed: no spread to judge by


def test_repeats_report_spread_and_flag_noise(tmp_path: Path) -> None:
    spec = analytic_spec("noisy", [{"name": "screen", "strategy": "ofat", "repeats": 3}])
    _, store = run_sweep(spec, tmp_path)
    assert len(stage_of(store, "noisy", "screen")) == 3 * 7
    summary = store.get_sweep("noisy").stages[0].summary["ofat"]
    assert summary["baseline"]["n"] == 3
    assert summary["baseline"]["std"] == pytest.approx(0.036, abs=0.003)
    noise = {p["name"]: p["noise"] for p in summary["ranking"]}
    # warmup moves the loss by at most 0.004, well inside the seed spread of 0.036
    assert noise == {"learning_rate": False, "weight_decay": False, "warmup_steps": True}
    assert [p["name"] for p in summary["ranking"]][-1] == "warmup_steps"


def test_grid_on_top_k_holds_the_rest_at_the_best_value(tmp_path: Path) -> None:
    stages = [
        {"name": "screen", "strategy": "ofat"},
        {
            "name": "grid",
            "strategy": "grid",
            "parameters": {"top": 2, "from": "screen"},
            "values": {"learning_rate": [1.0e-5, 3.0e-5, 5.0e-5], "weight_decay": [0.0, 0.05]},
        },
    ]
    _, store = run_sweep(analytic_spec("topk", stages), tmp_path)
    grid = stage_of(store, "topk", "grid")
    points = [(t.params["learning_rate"], t.params["weight_decay"]) for t in grid]
    assert sorted(points) == sorted(itertools.product([1.0e-5, 3.0e-5, 5.0e-5], [0.0, 0.05]))
    # warmup was not selected: it stays at the best trial's value so far (the OFAT winner's)
    assert {t.params["warmup_steps"] for t in grid} == {100}


@pytest.mark.parametrize("warm_start", [True, False])
def test_warm_start_hands_the_earlier_trials_to_the_sampler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, warm_start: bool
) -> None:
    seen: list[int] = []

    class RecordingTPE(optuna.samplers.TPESampler):
        def infer_relative_search_space(self, study: Any, trial: Any) -> Any:
            seen.append(len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))))
            return super().infer_relative_search_space(study, trial)

    monkeypatch.setattr(optuna.samplers, "TPESampler", RecordingTPE)
    stages = [
        {"name": "screen", "strategy": "ofat"},
        {
            "name": "bayes",
            "strategy": "bayes",
            "parameters": {"top": 2, "from": "screen"},
            "n_trials": 3,
            "warm_start": warm_start,
        },
    ]
    run, _store = run_sweep(analytic_spec("warm", stages), tmp_path)
    assert seen[0] == (7 if warm_start else 0)
    bayes = [t for t in run.study.get_trials() if t.user_attrs.get(STAGE_ATTR) == "bayes"]
    assert len(bayes) == 3
    assert {t.params["warmup_steps"] for t in bayes} == {100}  # pinned, not searched


def test_random_stage_samples_inside_the_ranges(tmp_path: Path) -> None:
    stages = [{"name": "rand", "strategy": "random", "n_trials": 6, "seed": 3}]
    _, store = run_sweep(analytic_spec("rand", stages), tmp_path)
    trials = stage_of(store, "rand", "rand")
    assert len(trials) == 6 and len({t.params["learning_rate"] for t in trials}) == 6
    assert all(1.0e-5 <= t.params["learning_rate"] <= 5.0e-5 for t in trials)


def test_pruning_stops_poor_trials_on_real_learning_curves(tmp_path: Path) -> None:
    nmtlc = require_shared("nmtlc", "nmtlc.json")
    spec = SweepSpec.model_validate(
        {
            "name": "nmt",
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
            "search_space": {
                "bpe": {"type": "categorical", "choices": [1, 2, 4, 8, 16, 32]},
                "num_layers": {"type": "categorical", "choices": [1, 2, 4, 6]},
                "model_size": {"type": "categorical", "choices": [256, 512, 1024]},
            },
            "stages": [{"name": "rand", "strategy": "random", "n_trials": 16, "seed": 0}],
            "pruning": {"algorithm": "asha", "min_epochs": 1},
            "tracking": {"wandb": {"mode": "disabled"}},
        }
    )
    _, store = run_sweep(spec, tmp_path, runner=f"replay:{nmtlc}")
    trials = store.list_trials("nmt")
    pruned = [t for t in trials if t.state is TrialState.PRUNED]
    full = max(len(t.evaluations) for t in trials if t.state is TrialState.COMPLETED)
    assert pruned, "ASHA pruned nothing"
    assert all(len(t.evaluations) < full for t in pruned)
    assert all(t.resources["pruned_after_evaluations"] == len(t.evaluations) for t in pruned)
