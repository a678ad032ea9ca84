"""Sweep views and exports, on sweeps written through the real Store (SQLite file).

The sweeps are built by hand rather than run, so every figure the views print (state
counts, the best trial, the pruning savings) is known in advance and checked exactly.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console, RenderableType

from sweepctl.orchestrator.export import export_payload, export_spec, write_trials_csv
from sweepctl.orchestrator.strategies import OfatReport, ParameterImpact
from sweepctl.orchestrator.sweep_report import (
    best_trials,
    status_renderables,
    sweeps_table,
    trials_table,
)
from sweepctl.spec.errors import UsageError
from sweepctl.spec.models import (
    SpecLoader,
    SweepSpec,
    load_spec,
    spec_to_dict,
    training_argument_names,
)
from sweepctl.storage import EvaluationRecord, Store, StoreError, SweepState, TrialState

S = TrialState
SPEC: dict[str, Any] = {
    "name": "s",
    "model": "m",
    "dataset": {"path": "imdb", "text_fields": ["text"]},
    "training": {"learning_rate": 2e-5, "num_train_epochs": 3, "early_stopping_patience": 2},
    "search_space": {
        "learning_rate": {
            "type": "float",
            "low": 1e-5,
            "high": 5e-5,
            "log": True,
            "ofat": [1e-5, 5e-5],
        },
        "warmup_steps": {"type": "int", "low": 0, "high": 500, "ofat": [0, 200]},
    },
    "stages": [
        {"name": "screen", "strategy": "ofat"},
        {
            "name": "bayes",
            "strategy": "bayes",
            "n_trials": 3,
            "parameters": {"top": 1, "from": "screen"},
        },
    ],
    "tracking": {"wandb": {"mode": "disabled"}},
}
CONFIG = {"training": {"learning_rate": 2e-5, "num_train_epochs": 3}}
REPLAY_CONFIG = {"replay_record": {"lr": 3e-5}, "nmtlc_dataset": "sst2"}  # no num_train_epochs


def stored_spec(**changes: Any) -> dict[str, Any]:
    return spec_to_dict(SweepSpec.model_validate({**SPEC, **changes}))


def add_trial(
    store: Store,
    sweep: str,
    stage: str,
    params: dict[str, Any],
    state: TrialState,
    objective: float | None = None,
    evaluations: int = 3,
    config: dict[str, Any] = CONFIG,
    error: str | None = None,
) -> int:
    trial_id = store.create_trial(sweep, {}, params, config, stage=stage)
    if state is S.FAILED and error:
        store.set_trial_state(trial_id, S.FAILED, error=error)
        return trial_id
    store.set_trial_state(trial_id, S.RUNNING)
    for epoch in range(1, evaluations + 1):
        record = EvaluationRecord(epoch=epoch, step=10 * epoch, eval_loss=0.5, f1=objective)
        store.record_evaluation(trial_id, record)
    if state is not S.RUNNING:
        metrics = {"f1": objective, "accuracy": 0.9, "eval_loss": 0.25, "epoch": evaluations}
        store.set_trial_state(trial_id, state, objective=objective, metrics=metrics)
    return trial_id


def ofat_summary() -> dict[str, Any]:
    effects_lr = [
        {"value": 1e-5, "mean": 0.70, "std": None, "delta": -0.10, "n": 1},
        {"value": 5e-5, "mean": 0.90, "std": 0.01, "delta": 0.10, "n": 2},
    ]
    effects_wu = [{"value": 200, "mean": 0.81, "std": None, "delta": 0.01, "n": 1}]
    report = OfatReport(
        0.80,
        0.02,
        3,
        [
            ParameterImpact("learning_rate", 0.10, 5e-5, effects_lr, noise=False),
            ParameterImpact("warmup_steps", 0.01, 200, effects_wu, noise=True),
        ],
    )
    return {"trials": 4, "finished": 4, "ofat": report.to_dict()}


def build_main_sweep(store: Store) -> None:
    """Screen: baseline 0.80, lr 1e-5 0.70, lr 5e-5 0.90, warmup 200 pruned after 1 of 3.
    Bayes: 0.85, a replayed trial pruned after 1 evaluation, a failure, one running."""
    store.create_sweep("s", stored_spec(), [("screen", "ofat"), ("bayes", "bayes")])
    store.set_sweep_state("s", SweepState.RUNNING)
    store.set_stage_state("s", "screen", SweepState.RUNNING)
    base = {"learning_rate": 2e-5, "warmup_steps": 0}
    add_trial(store, "s", "screen", base, S.COMPLETED, 0.80)
    add_trial(store, "s", "screen", {**base, "learning_rate": 1e-5}, S.COMPLETED, 0.70)
    add_trial(store, "s", "screen", {**base, "learning_rate": 5e-5}, S.COMPLETED, 0.90)
    add_trial(store, "s", "screen", {**base, "warmup_steps": 200}, S.PRUNED, 0.60, 1)
    store.set_stage_state("s", "screen", SweepState.COMPLETED, summary=ofat_summary())
    store.set_stage_state("s", "bayes", SweepState.RUNNING)
    add_trial(store, "s", "bayes", {**base, "learning_rate": 4e-5}, S.COMPLETED, 0.85)
    replayed = {**base, "learning_rate": 3e-5}
    add_trial(store, "s", "bayes", replayed, S.PRUNED, 0.50, 1, config=REPLAY_CONFIG)
    add_trial(store, "s", "bayes", {**base, "learning_rate": 1.5e-5}, S.FAILED, error="CUDA OOM")
    add_trial(store, "s", "bayes", {**base, "learning_rate": 2.5e-5}, S.RUNNING, evaluations=1)


def build_loss_sweep(store: Store) -> None:
    """Objective `loss`: minimised, so the lowest value is the best."""
    store.create_sweep("m", stored_spec(name="m", objective={"metric": "loss"}), [("g", "grid")])
    for lr, loss in ((1e-5, 0.5), (3e-5, 0.3), (5e-5, 0.4)):
        add_trial(store, "m", "g", {"learning_rate": lr, "warmup_steps": 0}, S.COMPLETED, loss)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("sweep-report") / "store.db"
    with Store(f"sqlite:///{path}") as store:
        build_main_sweep(store)
        build_loss_sweep(store)
        store.create_sweep("none", stored_spec(name="none"), [("screen", "ofat")])
        add_trial(store, "none", "screen", {"learning_rate": 2e-5}, S.FAILED, error="boom")
        yield store


def render(*renderables: RenderableType) -> str:
    console = Console(record=True, width=160, file=io.StringIO())
    for renderable in renderables:
        console.print(renderable)
    return console.export_text()


def line_with(text: str, needle: str) -> str:
    return next(line for line in text.splitlines() if needle in line)


# --- views ----------------------------------------------------------------------------


def test_sweeps_table_counts_and_direction_aware_best(store: Store) -> None:
    text = render(sweeps_table(store))
    main = line_with(text, " s ")
    assert "RUNNING" in main
    assert "7/8" in main  # the RUNNING trial is not done
    assert "1 RUNNING, 4 COMPLETED, 2 PRUNED, 1 FAILED" in main
    assert "f1 0.9000" in main
    assert "loss 0.3000" in line_with(text, " m ")
    assert "1/1" in line_with(text, " none ") and "1 FAILED" in text


def test_status_shows_stages_best_ofat_and_pruning_savings(store: Store) -> None:
    text = render(*status_renderables(store, "s"))
    assert "sweep s  RUNNING" in text
    assert "3 COMPLETED, 1 PRUNED" in line_with(text, "│ screen ")
    assert "1 RUNNING, 1 COMPLETED, 1 PRUNED, 1 FAILED" in line_with(text, "bayes")
    assert "best so far: trial 3 (stage screen, #2) f1 0.9000" in text
    assert "learning_rate=5e-05, warmup_steps=0" in line_with(text, "best so far")
    warmup = line_with(text, "│ warmup_steps")
    assert "within baseline seed spread" in warmup and "200: 0.8100 (Δ +0.0100)" in warmup
    lr = line_with(text, "│ learning_rate")
    assert "within baseline" not in lr and "1e-05: 0.7000 (Δ -0.1000)" in lr
    assert "5e-05: 0.9000 ± 0.0100 (Δ +0.1000)" in text
    assert "baseline f1 0.8000 ± 0.0200 (n=3)" in text
    # warmup 200: 3 epochs planned, 1 run -> 2 saved; the replayed trial has no
    # num_train_epochs, so its full run is the longest COMPLETED one (3): 2 more saved.
    assert "pruning saved 4 trial-epochs (66.7% of the compute the pruned" in text


def test_status_of_unknown_sweep_is_a_store_error(store: Store) -> None:
    with pytest.raises(StoreError, match="'nope' not found"):
        status_renderables(store, "nope")


def test_trials_table_is_newest_last_with_epoch_progress(store: Store) -> None:
    text = render(trials_table(store, "s", limit=3))
    rows = [line for line in text.splitlines() if "bayes" in line]
    assert len(rows) == 3 and "screen" not in text
    assert "1/3" in rows[0] and "PRUNED" in rows[0]  # replayed: max from completed trials
    assert "FAILED" in rows[1] and "0/3" in rows[1]
    assert "RUNNING" in rows[2] and "1/3" in rows[2] and "learning_rate=2.5e-05" in rows[2]
    assert len(render(trials_table(store, "s")).split("screen")) == 5


def test_best_trials_respects_direction(store: Store) -> None:
    assert [t.objective for t in best_trials(store, "s", 3)] == [0.90, 0.85, 0.80]
    assert [t.objective for t in best_trials(store, "m", 5)] == [0.3, 0.4, 0.5]
    assert best_trials(store, "none", 1) == []


# --- exports --------------------------------------------------------------------------


def test_exported_yaml_runs_as_a_trial_spec(store: Store, tmp_path: Path) -> None:
    best = best_trials(store, "s", 1)[0]
    path = tmp_path / "best.yaml"
    path.write_text(export_payload(store, "s", "yaml"))
    spec = load_spec(path)
    assert spec.name == "s-best"
    assert spec.stages == [] and spec.search_space == {}
    assert f"trial {best.id}" in (spec.description or "") and "f1 = 0.9" in spec.description
    for key, value in best.params.items():
        assert spec.training[key] == value
    assert spec.training["num_train_epochs"] == 3  # the rest of the sweep's spec is kept
    assert "stages" not in path.read_text() and "pruning" not in path.read_text()


def test_export_top_n_yields_one_document_each_in_spec_order(store: Store) -> None:
    text = export_payload(store, "s", "yaml", top=2)
    docs = list(yaml.load_all(text, Loader=SpecLoader))
    assert [d["name"] for d in docs] == ["s-best", "s-best-2"]
    assert [d["training"]["learning_rate"] for d in docs] == [5e-5, 4e-5]
    assert list(docs[0])[:3] == ["name", "description", "model"]
    assert export_spec(store, "m")[0]["training"]["learning_rate"] == 3e-5


def test_json_export(store: Store) -> None:
    one = json.loads(export_payload(store, "s", "json"))
    assert {"sweep", "trial_id", "objective", "params", "config"} <= set(one)
    assert one["sweep"] == "s" and one["objective"] == 0.9
    assert one["params"] == {"learning_rate": 5e-5, "warmup_steps": 0}
    assert one["config"]["training"]["learning_rate"] == 5e-5
    assert one["config"]["training"]["warmup_steps"] == 0
    many = json.loads(export_payload(store, "s", "json", top=2))
    assert [item["objective"] for item in many] == [0.9, 0.85]


def test_hf_args_are_training_arguments_fields(store: Store) -> None:
    args = json.loads(export_payload(store, "s", "hf-args"))
    assert set(args) <= training_argument_names()
    assert "early_stopping_patience" not in args
    assert args["learning_rate"] == 5e-5 and args["warmup_steps"] == 0
    assert isinstance(json.loads(export_payload(store, "s", "hf-args", top=2)), list)


def test_export_errors(store: Store) -> None:
    with pytest.raises(UsageError, match=r"^sweep 'none' has no completed trial to export$"):
        export_payload(store, "none", "yaml")
    with pytest.raises(StoreError, match="'nope' not found"):
        export_spec(store, "nope")
    with pytest.raises(StoreError, match="'nope' not found"):
        write_trials_csv(store, "nope", "unused.csv")


def test_trials_csv(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "trials.csv"
    assert write_trials_csv(store, "s", path) == 8
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    params = ["param.learning_rate", "param.warmup_steps"]
    metrics = ["objective", "accuracy", "f1", "precision", "recall", "eval_loss"]
    head = ["trial_id", "number", "optuna_trial_number", "stage", "state"]
    assert reader.fieldnames == [*head, *params, *metrics, "evaluations", "duration_s", "error"]
    assert [r["state"] for r in rows].count("COMPLETED") == 4
    pruned = rows[3]
    assert (pruned["stage"], pruned["state"], pruned["param.warmup_steps"]) == (
        "screen",
        "PRUNED",
        "200",
    )
    assert pruned["evaluations"] == "1" and pruned["f1"] == "0.6" and pruned["eval_loss"] == "0.25"
    assert float(pruned["duration_s"]) >= 0
    assert rows[6]["error"] == "CUDA OOM" and rows[6]["duration_s"] == ""
    assert rows[7]["state"] == "RUNNING" and rows[7]["duration_s"] == ""
