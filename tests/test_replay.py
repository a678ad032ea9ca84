"""The NMTLC replay runner on the real benchmark file, a real SQLite store and real Optuna.

Replays stand in for training when strategies, pruners and the orchestrator are tested,
so the stored trial must be exactly what the benchmark recorded: the right curve for the
configuration, the same store rows a real trial writes, and the same PRUNED/FAILED paths.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import optuna
import pytest

from sweepctl.spec.models import SweepSpec, spec_to_dict
from sweepctl.spec.plan import PruningSpec
from sweepctl.storage import Store, TrialRecord, TrialState
from sweepctl.workers.execute import execute_job
from sweepctl.workers.job import JobResult, TrialJob
from sweepctl.workers.replay import ReplayRunner, run_noop
from sweepctl.workers.rows import EvaluationRow
from tests.conftest import require_shared

SPEC = {
    "name": "nmt",
    "model": "replay",
    "dataset": {"path": "nmtlc", "name": "ted-zh-en", "text_fields": ["x"]},
    "objective": {"metric": "loss"},
    "tracking": {"wandb": {"mode": "disabled"}},
}
VARIED = ("initial_lr", "num_layers", "model_size", "ff_num_hidden")  # ted-zh-en's grid


@pytest.fixture(scope="module")
def nmtlc_path() -> Path:
    return require_shared("nmtlc", "nmtlc.json")


@pytest.fixture(scope="module")
def ted(nmtlc_path: Path) -> list[dict[str, Any]]:
    """The ted-zh-en records in file order, read independently of the runner."""
    data = json.loads(nmtlc_path.read_text(encoding="utf-8"))
    return [r for r in data if r["dataset_name"] == "ted-zh-en"]


def make_job(db_url: str, params: dict[str, Any], **changes: Any) -> TrialJob:
    spec = {**SPEC, **changes.pop("spec", {})}
    fields: dict[str, Any] = {"stage": "search", "optuna_number": 0, "home": "unused"}
    return TrialJob(
        sweep="nmt",
        params=params,
        spec=spec_to_dict(SweepSpec.model_validate(spec)),
        db_url=db_url,
        **{**fields, **changes},
    )


def stored(db_url: str, result: JobResult) -> TrialRecord:
    assert result.trial_id is not None, result.error
    with Store(db_url) as store:
        return store.get_trial(result.trial_id)


def same_config(ted: list[dict[str, Any]], hyperparams: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in ted if r["hyperparams"] == hyperparams]


def test_exact_lookup_replays_the_record_curve(
    nmtlc_path: Path, ted: list[dict[str, Any]], sqlite_url: str
) -> None:
    target = ted[5]["hyperparams"]
    params = {name: target[name] for name in VARIED}
    replay = ReplayRunner.cached(nmtlc_path)
    assert ReplayRunner.cached(nmtlc_path) is replay  # loaded once per process
    expected = same_config(ted, target)[0]["perplexity_curve"]

    result = replay(make_job(sqlite_url, params, optuna_number=7), [])

    trial = stored(sqlite_url, result)
    assert (result.state, result.epochs_run, result.max_epochs) == (
        "COMPLETED",
        len(expected),
        len(expected),
    )
    assert [e.eval_loss for e in trial.evaluations] == expected
    assert [e.metrics["perplexity"] for e in trial.evaluations] == expected
    assert [(e.epoch, e.step) for e in trial.evaluations][:2] == [(1.0, 1), (2.0, 2)]
    assert trial.state is TrialState.COMPLETED
    assert trial.objective == result.objective == min(expected)
    assert trial.metrics["perplexity"] == min(expected)
    assert trial.metrics["epoch"] == expected.index(min(expected)) + 1
    assert trial.optuna_trial_number == 7
    assert (trial.stage, trial.params) == ("search", params)
    assert trial.config == {"replay_record": target, "nmtlc_dataset": "ted-zh-en"}
    assert trial.resources["replay_record"] == target
    assert trial.resources["replay_match"] == "exact"


def test_repeated_configurations_pick_a_replica_by_seed_offset(
    nmtlc_path: Path, ted: list[dict[str, Any]]
) -> None:
    """NMTLC trained most configurations several times; seeds see that real noise."""
    replay = ReplayRunner.cached(nmtlc_path)
    target = ted[0]["hyperparams"]
    wanted = {name: float(target[name]) for name in VARIED}
    replicas = [r["perplexity_curve"] for r in same_config(ted, target)]
    assert len(replicas) > 1
    for offset in range(len(replicas) + 1):
        record, gap = replay.lookup("ted-zh-en", wanted, offset)
        assert (list(record.curve), gap) == (replicas[offset % len(replicas)], 0.0)


def test_nearest_neighbour_lookup_with_values_from_model_args(
    nmtlc_path: Path, ted: list[dict[str, Any]], sqlite_url: str
) -> None:
    # 5e-4 is log-nearer 6e-4 than 3e-4; 3 layers is relatively nearer 4 (1/4) than 2 (1/3)
    params = {"initial_lr": 5e-4, "num_layers": 3, "learning_rate": 1e-5}
    spec = {"model_args": {"model_size": 512, "ff_num_hidden": 2048}}
    nearest = {"initial_lr": 6e-4, "num_layers": 4, "model_size": 512, "ff_num_hidden": 2048}
    expected = next(r for r in ted if all(r["hyperparams"][k] == v for k, v in nearest.items()))

    result = ReplayRunner.cached(nmtlc_path)(make_job(sqlite_url, params, spec=spec), [])

    trial = stored(sqlite_url, result)
    assert result.state == "COMPLETED"
    assert [e.eval_loss for e in trial.evaluations] == expected["perplexity_curve"]
    assert trial.resources["replay_record"] == expected["hyperparams"]
    assert trial.resources["replay_match"] == "nearest"
    gap = abs(math.log(5 / 6)) + 1 / 4
    assert trial.resources["replay_distance"] == pytest.approx(gap, abs=1e-6)
    assert trial.resources["ignored_params"] == ["learning_rate"]
    assert result.objective == min(expected["perplexity_curve"])


class PruneAt:
    """A sink with the pruning sink's contract: read the objective, raise TrialPruned."""

    def __init__(self, evaluation: int) -> None:
        self.evaluation = evaluation
        self.seen: list[float | None] = []

    def __call__(self, row: EvaluationRow) -> None:
        self.seen.append(row.metric("loss"))
        if len(self.seen) == self.evaluation:
            raise optuna.TrialPruned(f"pruned after evaluation {self.evaluation}")


def test_pruned_at_the_second_evaluation(
    nmtlc_path: Path, ted: list[dict[str, Any]], sqlite_url: str
) -> None:
    target = ted[0]["hyperparams"]
    curve = ted[0]["perplexity_curve"]
    sink = PruneAt(2)

    result = ReplayRunner.cached(nmtlc_path)(
        make_job(sqlite_url, {name: target[name] for name in VARIED}), [sink]
    )

    trial = stored(sqlite_url, result)
    assert sink.seen == curve[:2]
    assert (result.state, result.epochs_run, result.max_epochs) == ("PRUNED", 2, len(curve))
    assert trial.state is TrialState.PRUNED
    assert [e.eval_loss for e in trial.evaluations] == curve[:2]
    assert trial.objective == result.objective == min(curve[:2])
    assert trial.resources["pruned_after_evaluations"] == 2


def test_real_optuna_pruner_through_execute_job(nmtlc_path: Path, sqlite_url: str) -> None:
    """The job path a sweep uses: Optuna's study in the same database, its pruner asked
    after every replayed checkpoint by workers.pruning."""
    study = optuna.create_study(study_name="nmt", storage=sqlite_url, direction="minimize")
    runner = f"replay:{nmtlc_path}"
    pruning = PruningSpec(algorithm="median", min_epochs=1)
    for lr, layers in [(3e-4, 2), (6e-4, 2), (3e-4, 4), (1e-3, 4), (1e-3, 2)]:
        trial = study.ask()
        params = {"initial_lr": lr, "num_layers": layers, "model_size": 256}
        job = make_job(
            sqlite_url, params, optuna_number=trial.number, runner=runner, pruning=pruning
        )
        result = execute_job(job)
        assert result.state in ("COMPLETED", "PRUNED"), result.error
        if result.state == "PRUNED":  # Optuna keeps the last reported value itself
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, result.objective)
    with Store(sqlite_url) as store:
        trials = store.list_trials("nmt")
    assert [t.optuna_trial_number for t in trials] == [0, 1, 2, 3, 4]
    pruned = [t for t in trials if t.state is TrialState.PRUNED]
    assert pruned, [t.objective for t in trials]
    for t in pruned:
        assert len(t.evaluations) == t.resources["pruned_after_evaluations"]


def test_failing_sink_fails_the_trial_with_its_reason(
    nmtlc_path: Path, ted: list[dict[str, Any]], sqlite_url: str
) -> None:
    def broken(row: EvaluationRow) -> None:
        raise RuntimeError(f"tracker down at epoch {row.epoch:g}")

    params = {name: ted[0]["hyperparams"][name] for name in VARIED}
    result = ReplayRunner.cached(nmtlc_path)(make_job(sqlite_url, params), [broken])

    trial = stored(sqlite_url, result)
    assert (result.state, result.error, result.epochs_run) == (
        "FAILED",
        "tracker down at epoch 1",
        1,
    )
    assert (trial.state, trial.error) == (TrialState.FAILED, "tracker down at epoch 1")
    assert "RuntimeError" in (trial.traceback or "")


def test_run_noop_records_a_constant_trial(sqlite_url: str) -> None:
    result = execute_job(make_job(sqlite_url, {"x": 1}, runner="noop", optuna_number=3))

    trial = stored(sqlite_url, result)
    assert (result.state, result.objective, result.epochs_run) == ("COMPLETED", 0.0, 1)
    assert (trial.state, trial.objective, trial.optuna_trial_number) == (
        TrialState.COMPLETED,
        0.0,
        3,
    )
    assert [(e.epoch, e.step, e.eval_loss) for e in trial.evaluations] == [(1.0, 1, 0.0)]
    assert run_noop(make_job(sqlite_url, {}, optuna_number=4), []).state == "COMPLETED"


def test_step_pause_from_the_environment(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests that kill a sweep mid-trial slow the replay down through this variable."""
    monkeypatch.setenv("SWEEPCTL_REPLAY_STEP_SECONDS", "0.05")
    result = run_noop(make_job(sqlite_url, {}), [])
    assert stored(sqlite_url, result).resources["wall_time_s"] >= 0.05

    monkeypatch.setenv("SWEEPCTL_REPLAY_STEP_SECONDS", "fast")
    result = execute_job(make_job(sqlite_url, {}, runner="noop", optuna_number=1))
    assert result.state == "FAILED"
    assert (result.error or "").startswith("SWEEPCTL_REPLAY_STEP_SECONDS='fast' is not a number")


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (
            {"dataset": {**SPEC["dataset"], "name": "ted-xx-en"}},
            "no records for dataset 'ted-xx-en'; known: fr-en",
        ),
        ({"objective": {"metric": "f1"}}, "replay reports perplexity as 'loss'"),
    ],
)
def test_bad_input_fails_before_the_store(
    nmtlc_path: Path, sqlite_url: str, spec: dict[str, Any], reason: str
) -> None:
    job = make_job(sqlite_url, {"initial_lr": 3e-4}, spec=spec, runner=f"replay:{nmtlc_path}")

    result = execute_job(job)

    assert result.state == "FAILED"
    assert reason in (result.error or "").splitlines()[0]
    with Store(sqlite_url) as store:
        assert store.count_rows()["sweepctl_trials"] == 0


def test_a_base_model_choice_replays_that_pretrained_models_lora_record(
    sqlite_url: str, nmtlc_path: Path
) -> None:
    """On the LoRA corpora the base model fixes width, depth and vocabulary: one choice."""
    data = json.loads(nmtlc_path.read_text(encoding="utf-8"))
    wanted = {"initial_lr": 0.0002, "batch_size": 16, "r": 64}
    expected = next(
        r
        for r in data
        if r["dataset_name"] == "fr-en"
        and r["basemodel"] == "xglm"
        and r["hyperparams"]["model_size"] == 2048
        and r["hyperparams"]["num_layers"] == 48
        and all(r["hyperparams"][k] == v for k, v in wanted.items())
    )
    spec = {"dataset": {"path": "nmtlc", "name": "fr-en", "text_fields": ["x"]}}
    params = {"base_model": "xglm-2048x48", **wanted}
    result = ReplayRunner.cached(nmtlc_path)(make_job(sqlite_url, params, spec=spec), [])
    trial = stored(sqlite_url, result)
    assert trial.resources["replay_record"] == expected["hyperparams"]
    assert trial.resources["replay_basemodel"] == "xglm"
    assert trial.resources["replay_match"] == "exact"
    assert [e.eval_loss for e in trial.evaluations] == expected["perplexity_curve"]


@pytest.mark.parametrize(
    ("value", "message"),
    [("xglm", "must look like 'xglm-2048x48'"), ("gpt-1024x24", "no records of base model")],
)
def test_a_malformed_or_unknown_base_model_is_refused_before_the_store(
    sqlite_url: str, nmtlc_path: Path, value: str, message: str
) -> None:
    spec = {"dataset": {"path": "nmtlc", "name": "fr-en", "text_fields": ["x"]}}
    job = make_job(sqlite_url, {"base_model": value}, spec=spec)
    with pytest.raises(ValueError, match=message):
        ReplayRunner.cached(nmtlc_path).plan(job)
