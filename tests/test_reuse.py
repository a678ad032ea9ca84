"""A sweep never trains the same configuration twice (orchestrator/reuse.py): real Optuna
samplers in tiny categorical spaces, the analytic runner and the in-process backend."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
import pytest
from rich.console import Console

import sweepctl.orchestrator.stage_runner as stage_runner
from sweepctl.orchestrator.backends import InlineBackend
from sweepctl.orchestrator.reuse import REUSED_ATTR, KnownConfigs, copy_result
from sweepctl.orchestrator.search import STAGE_ATTR
from sweepctl.orchestrator.sweep import SweepRun, launch, resume
from sweepctl.orchestrator.sweep_report import status_renderables
from sweepctl.service.overview import sweep_overview
from sweepctl.spec.models import SweepSpec
from sweepctl.storage import Store, SweepState, TrialState
from tests.analytic import loss
from tests.test_strategies import ANALYTIC, SPACE, analytic_spec, run_sweep

TINY = {  # 2 x 2 x 1 = 4 configurations
    "learning_rate": {"type": "categorical", "choices": [1.0e-5, 5.0e-5]},
    "weight_decay": {"type": "categorical", "choices": [0.0, 0.1]},
    "warmup_steps": {"type": "categorical", "choices": [100]},
}


def tiny_spec(name: str, stage: dict[str, Any], **extra: Any) -> SweepSpec:
    return analytic_spec(name, [stage], search_space=copy.deepcopy(TINY), **extra)


def configs(trials: list[Any]) -> Counter[tuple[Any, ...]]:
    return Counter(tuple(sorted(t.params.items())) for t in trials)


def stage_summary(store: Store, sweep: str, index: int = 0) -> dict[str, Any]:
    return store.get_sweep(sweep).stages[index].summary or {}


def check_reused_trials_carry_their_source(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    trials = study.get_trials()
    reused = [t for t in trials if REUSED_ATTR in t.user_attrs]
    for trial in reused:
        source = trials[trial.user_attrs[REUSED_ATTR]]
        assert REUSED_ATTR not in source.user_attrs
        assert trial.params == source.params
        assert trial.state is source.state is optuna.trial.TrialState.COMPLETE
        assert trial.value == source.value == pytest.approx(loss(trial.params))
    return reused


@pytest.mark.parametrize(
    "stage",
    [
        {"name": "s", "strategy": "random", "n_trials": 12, "seed": 0},
        {"name": "s", "strategy": "bayes", "n_trials": 12, "seed": 0},
    ],
    ids=["random", "tpe"],
)
def test_sampled_stage_in_a_tiny_space_runs_each_configuration_once_and_ends(
    tmp_path: Path, stage: dict[str, Any]
) -> None:
    run, store = run_sweep(tiny_spec("tiny", stage), tmp_path)
    stored = store.list_trials("tiny")
    assert len(stored) == 4 and set(configs(stored).values()) == {1}
    assert {t.state for t in stored} == {TrialState.COMPLETED}
    reused = check_reused_trials_carry_their_source(run.study)
    summary = stage_summary(store, "tiny")
    # the space is exhausted after 4 trainings, well before 12: the stage ends, no hang
    assert summary["ended_by"] == "exhausted"
    assert summary["reused"] == len(reused) == len(run.study.get_trials()) - 4
    assert run.study.best_value == min(t.objective for t in stored)


def test_n_trials_counts_trainings_not_answers_from_earlier_runs(tmp_path: Path) -> None:
    stage = {"name": "s", "strategy": "random", "n_trials": 3, "seed": 1}
    run, store = run_sweep(tiny_spec("budget", stage), tmp_path)
    stored = store.list_trials("budget")
    assert len(stored) == 3 and set(configs(stored).values()) == {1}
    reused = check_reused_trials_carry_their_source(run.study)
    assert reused, "seed 1 proposes known configurations before its third training"
    assert stage_summary(store, "budget")["ended_by"] == "n_trials"


def test_grid_after_ofat_reuses_the_points_ofat_already_ran(tmp_path: Path) -> None:
    stages = [
        {"name": "screen", "strategy": "ofat"},
        {
            "name": "grid",
            "strategy": "grid",
            "parameters": ["learning_rate", "weight_decay"],
            "values": {"learning_rate": [1.0e-5, 2.0e-5], "weight_decay": [0.0, 0.01]},
        },
    ]
    run, store = run_sweep(analytic_spec("overlap", stages), tmp_path)
    stored = store.list_trials("overlap")
    assert set(configs(stored).values()) == {1}  # nothing trained twice
    # OFAT (baseline lr 2e-5, wd 0.01) already ran (2e-5, 0.01), (1e-5, 0.01), (2e-5, 0.0)
    assert len([t for t in stored if t.stage == "grid"]) == 1
    grid = [t for t in run.study.get_trials() if t.user_attrs.get(STAGE_ATTR) == "grid"]
    assert len(grid) == 4 and all(t.state is optuna.trial.TrialState.COMPLETE for t in grid)
    assert len(check_reused_trials_carry_their_source(run.study)) == 3
    assert stage_summary(store, "overlap", 1)["reused"] == 3
    console = Console(width=160, record=True)
    console.print(*status_renderables(store, "overlap"))
    assert "3 reused" in console.export_text()  # `sweepctl status` shows it
    sweep = store.get_sweep("overlap")  # and the dashboard counts them as done
    grid_row = sweep_overview(store, sweep)["stages"][1]
    assert (grid_row["done"], grid_row["planned"], grid_row["reused"]) == (4, 4, 3)


def test_a_configuration_in_flight_is_not_launched_a_second_time(tmp_path: Path) -> None:
    """Two trials may be in flight; the sampler proposes the running configuration again:
    the second trial waits for the first one's result instead of starting a worker."""
    space = {**copy.deepcopy(TINY), "weight_decay": {"type": "categorical", "choices": [0.1]}}
    stage = {"name": "s", "strategy": "random", "n_trials": 2, "seed": SEED_REPEATING_AT_ONCE}
    spec = analytic_spec(
        "flight",
        [stage],
        search_space=space,
        resources={"max_concurrent_trials": 2},
    )
    started: list[int] = []
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    store = Store(url)

    def record(kind: str, data: dict[str, Any]) -> None:
        if kind == "trial_started":
            started.append(data["number"])

    run = SweepRun(spec, store, InlineBackend(), url, str(tmp_path), ANALYTIC, record)
    assert launch(run) is SweepState.COMPLETED
    first, second = run.study.get_trials()[:2]
    assert second.params == first.params and 1 not in started  # proposed while 0 ran
    assert second.user_attrs[REUSED_ATTR] == 0  # waited for trial 0's result
    assert second.state is first.state is optuna.trial.TrialState.COMPLETE
    assert second.value == first.value
    stored = store.list_trials("flight")
    assert len(stored) == 2 and set(configs(stored).values()) == {1}
    store.close()


SEED_REPEATING_AT_ONCE = 1  # RandomSampler(seed) proposes the same learning rate twice first


class Crash(RuntimeError):
    pass


def test_resume_after_a_crash_keeps_reused_answers_and_trains_nothing_twice(
    tmp_path: Path,
) -> None:
    spec = tiny_spec("crash", {"name": "s", "strategy": "random", "n_trials": 12, "seed": 0})
    url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    store = Store(url)

    def die_after_first_reuse(kind: str, data: dict[str, Any]) -> None:
        if kind == "trial_reused":
            raise Crash  # the orchestrator dies right after answering a repeat

    run = SweepRun(
        spec, store, InlineBackend(), url, str(tmp_path), ANALYTIC, die_after_first_reuse
    )
    with pytest.raises(Crash):
        launch(run)
    before = {t.id: t.objective for t in store.list_trials("crash")}
    assert 0 < len(before) < 4

    again = SweepRun(spec, store, InlineBackend(), url, str(tmp_path), ANALYTIC)
    assert resume(again) is SweepState.COMPLETED
    stored = store.list_trials("crash")
    assert len(stored) == 4 and set(configs(stored).values()) == {1}
    assert all({t.id: t.objective for t in stored}[i] == v for i, v in before.items())
    study = optuna.load_study(study_name="crash", storage=url)
    states = Counter(t.state for t in study.get_trials())
    assert states[optuna.trial.TrialState.RUNNING] == 0
    reused = check_reused_trials_carry_their_source(study)
    assert stage_summary(store, "crash")["reused"] == len(reused) >= 1
    store.close()


def test_a_pruned_result_is_copied_with_its_curve(tmp_path: Path) -> None:
    """TPE ranks PRUNED trials by their intermediate values: the copy must carry them."""
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'o.db'}", study_name="p")
    space = {"x": optuna.distributions.CategoricalDistribution([1, 2])}
    study.enqueue_trial({"x": 1})
    first = study.ask(space)
    first.report(5.0, 1)
    first.report(4.0, 2)
    study.tell(first, state=optuna.trial.TrialState.PRUNED)
    known = KnownConfigs.of(study)
    source = known.source((0, (("x", 1),)), allow_pruned=True)
    assert source is not None and known.source((0, (("x", 1),)), allow_pruned=False) is None
    study.enqueue_trial({"x": 1})
    second = study.ask(space)
    copy_result(study, second, source)
    copied = study.get_trials()[1]
    assert copied.state is optuna.trial.TrialState.PRUNED
    assert copied.intermediate_values == {1: 5.0, 2: 4.0}
    assert copied.value == 4.0 and copied.user_attrs[REUSED_ATTR] == 0


def test_ofat_repeats_with_other_seeds_are_not_taken_for_repeats(tmp_path: Path) -> None:
    """Same params with another seed offset is another experiment: it runs."""
    spec = analytic_spec("seeds", [{"name": "screen", "strategy": "ofat", "repeats": 2}])
    run, store = run_sweep(spec, tmp_path)
    assert len(store.list_trials("seeds")) == 2 * (1 + 2 * len(SPACE))
    assert not [t for t in run.study.get_trials() if REUSED_ATTR in t.user_attrs]


def test_a_sampler_that_keeps_proposing_known_configurations_ends_the_stage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard for a sampler that never leaves what it knows (GPSampler with pruning
    does): after MAX_REPEAT_STREAK known proposals in a row the stage ends, trained or not.
    A streak of 2 makes the real RandomSampler hit it in the 4-point space."""
    monkeypatch.setattr(stage_runner, "MAX_REPEAT_STREAK", 2)
    stage = {"name": "s", "strategy": "random", "n_trials": 12, "seed": 1}
    run, store = run_sweep(tiny_spec("streak", stage), tmp_path)
    stored = store.list_trials("streak")
    assert 1 <= len(stored) < 4 and set(configs(stored).values()) == {1}
    summary = stage_summary(store, "streak")
    assert summary["ended_by"] == "repeats"
    trials = sorted(run.study.get_trials(), key=lambda t: t.number)
    assert [REUSED_ATTR in t.user_attrs for t in trials[-2:]] == [True, True]
