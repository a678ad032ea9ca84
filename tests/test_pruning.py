"""The spec's pruning keys reach Optuna's real pruners, and `patience` keeps a trial that is
still improving: the slow starter the NMTLC benchmark lost to plain rung comparisons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from sweepctl.spec.errors import SpecError
from sweepctl.spec.models import SweepSpec
from sweepctl.workers.pruning import make_pruner
from tests.test_strategies import analytic_spec

STAGES = [{"name": "rand", "strategy": "random", "n_trials": 2}]


def spec_with(pruning: dict[str, Any]) -> SweepSpec:
    return analytic_spec("pruned", STAGES, pruning=pruning)


@pytest.mark.parametrize(
    ("pruning", "message"),
    [
        ({"algorithm": "none", "patience": 2}, "patience applies to a pruner"),
        ({"algorithm": "asha", "patience": 0}, "patience"),
        ({"algorithm": "asha", "min_trials": 3}, "min_trials applies to algorithm 'median'"),
        ({"algorithm": "median", "min_trials": 0}, "min_trials"),
        ({"algorithm": "median", "patients": 2}, "pruning.patients"),
    ],
)
def test_bad_pruning_keys_are_refused(pruning: dict[str, Any], message: str) -> None:
    with pytest.raises((SpecError, ValueError), match=message):
        spec_with(pruning)


def test_spec_keys_reach_the_optuna_pruner() -> None:
    spec = spec_with({"algorithm": "median", "min_epochs": 2, "patience": 3, "min_trials": 4})
    pruner = make_pruner(spec.pruning)
    assert isinstance(pruner, optuna.pruners.PatientPruner)
    assert pruner._patience == 3
    median = pruner._wrapped_pruner
    assert isinstance(median, optuna.pruners.MedianPruner)
    assert (median._n_min_trials, median._n_warmup_steps) == (4, 1)
    asha = make_pruner(spec_with({"algorithm": "asha", "patience": 2}).pruning)
    assert isinstance(asha._wrapped_pruner, optuna.pruners.SuccessiveHalvingPruner)
    plain = make_pruner(spec_with({"algorithm": "median"}).pruning)
    assert isinstance(plain, optuna.pruners.MedianPruner)


def curve_study(tmp_path: Path, pruning: dict[str, Any]) -> optuna.Study:
    """Three finished fast starters (loss 4, 3, 2, 1.9, 1.9, 1.9)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'p.db'}",
        study_name="p",
        pruner=make_pruner(spec_with(pruning).pruning),
    )
    for offset in (0.0, 0.1, 0.2):
        trial = study.ask()
        for step, value in enumerate((4.0, 3.0, 2.0, 1.9, 1.9, 1.9), start=1):
            trial.report(value + offset, step)
        study.tell(trial, 1.9 + offset)
    return study


def pruned_at(study: optuna.Study, curve: tuple[float, ...]) -> int | None:
    trial = study.ask()
    for step, value in enumerate(curve, start=1):
        trial.report(value, step)
        if trial.should_prune():
            return step
    return None


SLOW_STARTER = (9.0, 8.0, 7.0, 6.0, 5.0, 4.0)  # behind everyone, improving at every step
STALLED = (9.0, 8.0, 8.1, 8.2, 8.3, 8.4)  # no better than 8.0 since step 2


def test_patience_keeps_a_slow_starter_that_the_plain_pruner_stops(tmp_path: Path) -> None:
    plain = curve_study(tmp_path / "a", {"algorithm": "median"})
    assert pruned_at(plain, SLOW_STARTER) == 1
    patient = curve_study(tmp_path / "b", {"algorithm": "median", "patience": 2})
    assert pruned_at(patient, SLOW_STARTER) is None
    assert pruned_at(patient, STALLED) == 5  # steps 3-5 no better than step 2, and behind


def test_min_trials_does_not_judge_a_step_only_one_other_trial_reached(tmp_path: Path) -> None:
    study = curve_study(tmp_path, {"algorithm": "median", "min_trials": 2})
    lone = study.ask()  # the only finished run that got to steps 7 and 8
    for step, value in enumerate((4.0, 3.0, 2.0, 1.9, 1.9, 1.9, 1.0, 0.9), start=1):
        lone.report(value, step)
    study.tell(lone, 0.9)
    late = (3.5, 2.5, 1.95, 1.9, 1.85, 1.8, 1.5, 1.4)  # fine until step 6, then behind `lone`
    assert pruned_at(study, late) is None
    strict = curve_study(tmp_path / "strict", {"algorithm": "median"})
    mirror = strict.ask()
    for step, value in enumerate((4.0, 3.0, 2.0, 1.9, 1.9, 1.9, 1.0, 0.9), start=1):
        mirror.report(value, step)
    strict.tell(mirror, 0.9)
    assert pruned_at(strict, late) == 7  # n_min_trials 1: judged against one run
