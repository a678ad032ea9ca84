"""The job a worker receives is resolved by the orchestrator: the worker validates it
once, applies nothing, and builds TrainingArguments once, for training."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import transformers

from sweepctl.orchestrator.trial_jobs import trial_pruning, trial_spec
from sweepctl.spec.models import SweepSpec
from sweepctl.storage import Store, TrialState
from sweepctl.workers.execute import execute_job
from sweepctl.workers.job import TrialJob

STAGES = [{"name": "screen", "strategy": "ofat", "repeats": 2}]
SPACE = {"learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2, "ofat": [1e-2]}}


def sweep_spec(tiny_spec: dict[str, Any]) -> SweepSpec:
    data = copy.deepcopy(tiny_spec)
    data["training"]["lr_scheduler_type"] = "cosine"  # a key only HF itself can judge
    data["training"]["num_train_epochs"] = 1
    return SweepSpec.model_validate({**data, "search_space": SPACE, "stages": STAGES})


def counted(function: Any, calls: list[int]) -> Any:
    """The real function, counting its calls (a plain function, so it binds as a method)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return function(*args, **kwargs)

    return wrapper


def test_the_orchestrator_resolves_values_and_the_repeat_seed_and_drops_the_plan(
    tiny_spec: dict[str, Any],
) -> None:
    spec = sweep_spec(tiny_spec)
    resolved = trial_spec(spec, {"learning_rate": 1e-2}, repeat=1)
    assert resolved["training"]["learning_rate"] == 1e-2
    assert resolved["training"]["seed"] == spec.seed + 1
    assert resolved["stages"] == []
    assert trial_pruning(spec, prunable=True) is None  # algorithm none: nothing to prune


def test_a_worker_validates_the_job_once_and_builds_training_arguments_once(
    tiny_spec: dict[str, Any], sqlite_url: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = sweep_spec(tiny_spec)
    job = TrialJob(
        sweep="tiny",
        stage=None,
        optuna_number=0,
        params={"learning_rate": 1e-2},
        spec=trial_spec(spec, {"learning_rate": 1e-2}, repeat=1),
        db_url=sqlite_url,
        home=str(home),
        repeat=1,
    )
    built: list[int] = []
    post_init = transformers.TrainingArguments.__post_init__
    monkeypatch.setattr(transformers.TrainingArguments, "__post_init__", counted(post_init, built))
    validated: list[int] = []
    validate = SweepSpec.model_validate  # bound to the class already
    monkeypatch.setattr(SweepSpec, "model_validate", counted(validate, validated))

    result = execute_job(job)

    assert result.state == "COMPLETED", result.error
    assert (len(built), len(validated)) == (1, 1)
    with Store(sqlite_url) as store:
        trial = store.get_trial(result.trial_id)
    assert trial.state is TrialState.COMPLETED
    assert trial.config["training"]["seed"] == spec.seed + 1
    assert trial.config["training"]["lr_scheduler_type"] == "cosine"
