"""A sweep that learnt nothing says so, wherever its answer is read.

One real sweep through `sweepctl launch`: a tiny BERT on 16 training rows, one step at a
learning rate of 1e-7, so every trial predicts a single class and scores the majority
rate. An OFAT screen finds no signal, a grid takes its "top 2" from that tie, and the
flags, the no-signal message, the tie warning and the sweep-level "no trial beats the
baseline" with its causes must reach the launch output, `status`, `export` and the API's
overview. Then each rule of orchestrator.diagnosis on constructed inputs, so each can fail
on its own, and the store's reads behind them on SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweepctl.cli import main
from sweepctl.orchestrator.confirmed import Confirmed
from sweepctl.orchestrator.diagnosis import (
    BaselineScore,
    baseline_score,
    baseline_values,
    beats_baseline,
    confirmed_verdict,
    dominant_class_cause,
    epochs_cause,
    few_steps_cause,
    learning_rate_cause,
    noise_margin,
    stage_warnings,
    sweep_warnings,
)
from sweepctl.orchestrator.proposals import tie_pick_warning
from sweepctl.orchestrator.strategies import OfatReport, ParameterImpact
from sweepctl.service.overview import sweep_overview
from sweepctl.spec.stages import GridStage
from sweepctl.storage import StageRecord, Store, SweepState, TrialState
from sweepctl.storage.outcome_views import TrainingExtent, TrialNoise
from tests.conftest import sentiment_rows, write_csv

pytest_plugins = ["tests.storage_backends"]

NO_SIGNAL = "stage screen: no parameter moved the objective (every move is within noise)"
TIE = (
    "stage grid: top 2 taken from stage screen, where no parameter moved the objective: "
    "the parameters were not chosen by impact"
)
NO_BEAT = "no trial beats the baseline by more than its noise"
FEW_STEPS = "likely cause: too few training rows for the number of steps: 16 training rows"
LOW_LR = "likely cause: learning rate 1e-07..3e-07 is below the usual range"


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def sweep(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The degenerate sweep, launched once: 4 OFAT trainings and 1 new grid point (the
    grid's other three points are the baseline's and the OFAT moves' runs, reused)."""
    tmp = tmp_path_factory.mktemp("degenerate-sweep")
    rows = sentiment_rows(1, "pos", "neg")  # 16 rows, 8 of each class
    spec = {
        "name": "learnt-nothing",
        "model": str(tiny_model_dir),
        "dataset": {
            "path": "csv",
            "data_files": {
                "train": str(write_csv(tmp / "train.csv", ["text", "label"], rows)),
                "validation": str(write_csv(tmp / "validation.csv", ["text", "label"], rows)),
            },
            "text_fields": ["text"],
            "max_length": 32,
        },
        "training": {
            "learning_rate": 1e-7,
            "per_device_train_batch_size": 16,
            "num_train_epochs": 1,
            "seed": 7,
        },
        "objective": {"metric": "accuracy"},
        "search_space": {
            "learning_rate": {"type": "float", "low": 1e-8, "high": 1e-6, "ofat": [3e-7]},
            "weight_decay": {"type": "float", "low": 0.0, "high": 0.1, "ofat": [0.1]},
            "warmup_steps": {"type": "int", "low": 0, "high": 10, "ofat": [5]},
        },
        "stages": [
            {"name": "screen", "strategy": "ofat"},
            {"name": "grid", "strategy": "grid", "parameters": {"top": 2, "from": "screen"}},
        ],
        "resources": {"cpus_per_trial": 1, "max_concurrent_trials": 1},
        "pruning": {"algorithm": "none"},
        "tracking": {"wandb": {"mode": "disabled"}},
    }
    path = tmp / "spec.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    url = f"sqlite:///{tmp / 'store.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SWEEPCTL_HOME", str(tmp / "home"))
        patch.delenv("SWEEPCTL_DB", raising=False)
        heard = _Heard()
        logging.getLogger("sweepctl.sweep").addHandler(heard)
        try:
            code, out = run_cli(["launch", str(path), "--db", url, "--backend", "inline"])
        finally:
            logging.getLogger("sweepctl.sweep").removeHandler(heard)
        assert code == 0, out
        yield {"url": url, "out": out, "logged": heard.lines, "run": run_cli}


class _Heard(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def run_cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


def assert_named(text: str) -> None:
    """Everything the sweep must say about itself, in any of its outputs."""
    text = one_line(text)
    assert NO_SIGNAL in text
    assert TIE in text
    assert NO_BEAT in text
    assert FEW_STEPS in text and LOW_LR in text


def test_every_trial_of_the_sweep_is_stored_degenerate_at_the_majority_rate(
    sweep: dict[str, Any],
) -> None:
    with Store(sweep["url"], read_only=True) as store:
        trials = store.list_trials("learnt-nothing")
        grid = next(s for s in store.get_sweep("learnt-nothing").stages if s.name == "grid")
    assert len(trials) == 5 and {t.state for t in trials} == {TrialState.COMPLETED}
    assert {t.objective for t in trials} == {0.5}  # 8 of 16: the majority rate
    reasons = {t.metrics["degenerate"] for t in trials}
    assert all(r.startswith("predicts only class ") and "on 16 of 16 rows" for r in reasons)
    assert grid.summary is not None and grid.summary["picked_from_tie"] is True
    assert grid.summary["reused"] == 3


def test_launch_prints_the_warnings_before_its_answer_and_logs_the_tie_at_the_grid_start(
    sweep: dict[str, Any],
) -> None:
    out = sweep["out"]
    assert_named(out)
    lines = [line for line in out.splitlines() if line.strip()]
    warned = [i for i, line in enumerate(lines) if line.startswith("warning: ")]
    assert lines[warned[-1] + 1].startswith("best configuration written to")  # then the answer
    assert warned == list(range(warned[0], warned[-1] + 1)) and len(warned) == 6
    assert lines[warned[0] - 1].startswith("baseline accuracy 0.5000")  # after the OFAT table
    assert "every completed trial is degenerate (5 of 5), e.g. trial 1: predicts only" in out
    assert any(one_line(TIE.removeprefix("stage ")) in line for line in sweep["logged"])


def test_status_flags_the_best_trial_and_names_the_warnings(sweep: dict[str, Any]) -> None:
    code, out = sweep["run"](["status", "learnt-nothing", "--db", sweep["url"]])
    assert code == 0
    assert_named(out)
    best = next(line for line in out.splitlines() if line.startswith("best so far"))
    assert "[degenerate: predicts only class" in best


def test_watch_marks_each_degenerate_trial_in_the_trial_table(sweep: dict[str, Any]) -> None:
    code, out = sweep["run"](["watch", "learnt-nothing", "--db", sweep["url"]])
    rows = [line for line in out.splitlines() if "learning_rate=" in line]
    assert code == 0 and len(rows) == 5
    assert all("COMPLETED degenerate" in row for row in rows)


def test_the_export_carries_the_warnings_and_the_trial_flag(sweep: dict[str, Any]) -> None:
    code, text = sweep["run"](["export", "learnt-nothing", "--db", sweep["url"]])
    assert code == 0
    comments = "\n".join(line[2:] for line in text.splitlines() if line.startswith("# "))
    assert_named(comments)
    exported = yaml.safe_load(text)
    assert "; degenerate: predicts only class" in exported["description"]
    code, raw = sweep["run"](["export", "learnt-nothing", "--db", sweep["url"], "--format", "json"])
    summary = json.loads(raw)
    assert code == 0 and summary["degenerate"].startswith("predicts only class")
    assert_named("\n".join(summary["warnings"]))


def test_the_api_overview_lists_the_same_warnings(sweep: dict[str, Any]) -> None:
    with Store(sweep["url"], read_only=True) as store:
        row = store.sweep_row("learnt-nothing")
        overview = sweep_overview(store, row)
        again = sweep_overview(store, store.get_sweep("learnt-nothing"))  # a SweepRecord
        direct = sweep_warnings(store, row, "accuracy", True)
    assert overview["warnings"] == again["warnings"] == direct
    assert_named("\n".join(overview["warnings"]))
    assert overview["best"]["degenerate"].startswith("predicts only class")


# --- the cause rules, each on its own -----------------------------------------------------


def extent(**changes: Any) -> TrainingExtent:
    """MRPC as the issue saw it: 400 rows, batch 16, 3 epochs at 2e-5 (75 steps)."""
    base: dict[str, Any] = {
        "learning_rate": (2e-5, 2e-5),
        "epochs": (3.0, 3.0),
        "train_rows": 400,
        "batch_size": 16,
        "accumulation": 1,
        "max_steps": None,
    }
    return TrainingExtent(**{**base, **changes})


def test_fewer_than_a_hundred_optimizer_steps_is_named_with_rows_batch_and_epochs() -> None:
    assert few_steps_cause(extent()) == (
        "too few training rows for the number of steps: 400 training rows at batch size 16 "
        "and at most 3 epoch(s) give at most 75 optimizer step(s) per trial; fine-tuning "
        "usually needs 100 or more"
    )
    accumulated = few_steps_cause(extent(batch_size=4, accumulation=4))
    assert accumulated is not None and "batch size 4 x 4 accumulated" in accumulated


@pytest.mark.parametrize(
    "changes",
    [{"train_rows": 3668, "batch_size": 32}, {"max_steps": 500}, {"train_rows": None}],
)
def test_enough_steps_or_unknown_rows_are_not_a_cause(changes: dict[str, Any]) -> None:
    assert few_steps_cause(extent(**changes)) is None


def test_a_learning_rate_is_a_cause_only_when_every_trial_is_outside_the_usual_range() -> None:
    below = learning_rate_cause((1e-7, 3e-7))
    assert below == (
        "learning rate 1e-07..3e-07 is below the usual range for fine-tuning BERT-family "
        "models (1e-05 to 1e-04) in every trial"
    )
    assert (learning_rate_cause((1e-3, 1e-3)) or "").startswith("learning rate 0.001 is above")
    for span in [(2e-5, 5e-5), (1e-7, 1e-3), (1e-5, 1e-4), None]:
        assert learning_rate_cause(span) is None, span


def test_epochs_are_a_cause_only_outside_one_to_ten_in_every_trial() -> None:
    assert epochs_cause((0.5, 0.5)) == (
        "epochs 0.5 is below the usual range (1 to 10) in every trial"
    )
    assert (epochs_cause((20.0, 40.0)) or "").startswith("epochs 20..40 is above")
    assert epochs_cause((1.0, 10.0)) is None and epochs_cause((0.5, 3.0)) is None


def test_a_class_over_its_balanced_share_dominates_and_is_named() -> None:
    names = ["not_equivalent", "equivalent"]
    assert dominant_class_cause([129, 279], names) == (
        "one class dominates the validation labels: class 1 (equivalent) is 68.4% of 408 "
        "rows, so always predicting it scores accuracy 0.684"
    )
    assert (dominant_class_cause([20, 30, 50]) or "").startswith(
        "one class dominates the validation labels: class 2 is 50.0% of 100 rows"
    )
    for counts in ([428, 444], [34, 33, 33], [16], [], None):  # SST-2's dev split is balanced
        assert dominant_class_cause(counts) is None, counts


def noise(objective: float, half: float | None = None, **kw: Any) -> TrialNoise:
    low, high = (objective - half, objective + half) if half is not None else (None, None)
    return TrialNoise(id=1, number=0, params={}, objective=objective, low=low, high=high,
                      degenerate=None, **kw)  # fmt: skip


def test_the_best_trial_must_clear_both_evaluation_intervals_or_the_seed_spread() -> None:
    base = BaselineScore(mean=0.80, n=1, half_width=0.04)
    assert noise_margin(noise(0.86, 0.03), base) == pytest.approx(0.05)  # in quadrature
    assert beats_baseline(noise(0.86, 0.03), base, maximize=True)
    assert not beats_baseline(noise(0.84, 0.03), base, maximize=True)
    spread = BaselineScore(mean=0.80, n=3, std=0.08, half_width=0.02)
    assert noise_margin(noise(0.86, 0.03), spread) == 0.08
    assert not beats_baseline(noise(0.86, 0.03), spread, maximize=True)
    assert beats_baseline(noise(0.30), BaselineScore(0.40, 1), maximize=False)
    assert not beats_baseline(noise(0.40), BaselineScore(0.40, 1), maximize=False)


def test_the_baseline_score_averages_its_runs_and_their_noise() -> None:
    score = baseline_score([noise(0.70, 0.06), noise(0.74, 0.04)])
    assert score is not None and score.n == 2 and score.mean == pytest.approx(0.72)
    assert score.std == pytest.approx(0.02 * 2**0.5)
    assert score.half_width == pytest.approx(0.05 / 2**0.5)
    partly = baseline_score([noise(0.70, 0.06), noise(0.74)])
    assert partly is not None and partly.half_width is None
    assert baseline_score([]) is None


def test_the_baseline_is_read_from_the_stored_spec_as_the_spec_reads_it() -> None:
    basis = {
        "search_space": {"learning_rate": {}, "weight_decay": {}, "max_length": {},
                         "hidden_dropout_prob": {}},
        "training": {"learning_rate": 3e-5},
        "model_args": {"hidden_dropout_prob": 0.1},
        "dataset": {"max_length": 64},
    }  # fmt: skip
    assert baseline_values(basis) == {
        "learning_rate": 3e-5,
        "weight_decay": 0.0,  # TrainingArguments' default
        "max_length": 64,
        "hidden_dropout_prob": 0.1,
    }
    assert baseline_values({**basis, "model_args": {}}) is None  # a model key without value
    assert baseline_values({"training": {"learning_rate": 3e-5}}) is None  # nothing searched


def confirmed(winner: dict[str, Any], vs_baseline: dict[str, Any] | None) -> Confirmed:
    return Confirmed("confirm", "mean", "f1", True, winner, [winner], [], {}, vs_baseline)


def test_a_confirm_stage_answers_with_its_paired_test_against_the_baseline() -> None:
    paired = {"mean_difference": 0.004, "low": -0.01, "high": 0.018, "n": 5}
    assert confirmed_verdict(confirmed({}, {**paired, "distinguishable": False})) == (
        "no trial beats the baseline: confirm stage confirm's winner - baseline is +0.0040 "
        "[-0.0100, +0.0180] over 5 seeds"
    )
    clear = {**paired, "low": 0.001, "distinguishable": True}
    assert confirmed_verdict(confirmed({}, clear)) is None
    assert (confirmed_verdict(confirmed({"is_baseline": True}, None)) or "").endswith(
        "the confirm stage picked the baseline itself"
    )


def stage(name: str, summary: dict[str, Any] | None) -> StageRecord:
    return StageRecord(name, 0, "ofat", SweepState.COMPLETED, summary)


def test_stage_summaries_say_when_no_parameter_moved_and_pass_on_their_own_warnings() -> None:
    stages = [
        stage("screen", {"ofat": {"no_signal": True}}),
        stage("moved", {"ofat": {"no_signal": False}}),
        stage("grid", {"warnings": ["top 1 taken from stage screen, ..."]}),
        stage("pending", None),
    ]
    assert stage_warnings(stages) == [NO_SIGNAL, "stage grid: top 1 taken from stage screen, ..."]


def ofat(*noise_flags: bool) -> OfatReport:
    names = ["learning_rate", "weight_decay", "warmup_steps"]
    ranking = [
        ParameterImpact(n, 0.0, None, noise=f) for n, f in zip(names, noise_flags, strict=True)
    ]
    return OfatReport(0.5, None, 1, ranking)


def test_a_top_k_is_flagged_only_when_taken_from_a_stage_without_signal() -> None:
    grid = GridStage.model_validate(
        {"name": "grid", "strategy": "grid", "parameters": {"top": 2, "from": "screen"}}
    )
    assert tie_pick_warning(grid, {"screen": ofat(True, True, True)}) == (
        TIE.removeprefix("stage grid: ") + " (searching learning_rate, weight_decay)"
    )
    assert tie_pick_warning(grid, {"screen": ofat(False, True, True)}) is None
    explicit = GridStage.model_validate(
        {"name": "grid", "strategy": "grid", "parameters": ["learning_rate"]}
    )
    assert tie_pick_warning(explicit, {"screen": ofat(True, True, True)}) is None


# --- the store's reads behind them, on every backend --------------------------------------

SPEC: dict[str, Any] = {
    "name": "small",
    "objective": {"metric": "accuracy"},
    "training": {"learning_rate": 2e-5, "num_train_epochs": 3},
    "model_args": {},
    "dataset": {"max_length": 64},
    "search_space": {"learning_rate": {}, "num_train_epochs": {}},
}


def finished(store: Store, params: dict[str, Any], objective: float, **metrics: Any) -> int:
    config = {
        "labels": ["not_equivalent", "equivalent"],
        "rows": {"train": 400, "validation": 408},
        "training": {
            "learning_rate": params["learning_rate"],
            "num_train_epochs": params["num_train_epochs"],
            "per_device_train_batch_size": 16,
            "gradient_accumulation_steps": 1,
            "max_steps": -1,
        },
    }
    trial_id = store.create_trial("small", SPEC, params, config, "screen")
    store.set_trial_state(trial_id, TrialState.RUNNING)
    store.set_trial_state(trial_id, TrialState.COMPLETED, objective=objective, metrics=metrics)
    return trial_id


def mrpc_metrics(score: float, degenerate: str | None = None) -> dict[str, Any]:
    flag = {"degenerate": degenerate} if degenerate else {}
    interval = {"estimate": score, "low": score - 0.045, "high": score + 0.045, "n": 408,
                "method": "wilson"}  # fmt: skip
    return {"objective_interval": interval, "confusion_matrix": [[0, 129], [0, 279]], **flag}


def test_the_store_finds_the_baseline_runs_and_the_training_range(store: Store) -> None:
    store.create_sweep("small", SPEC, [("screen", "ofat")])
    majority = "predicts only class 1 (equivalent) on 408 of 408 rows"
    first = finished(store, {"learning_rate": 2e-5, "num_train_epochs": 3}, 0.6838,
                     **mrpc_metrics(0.6838, majority))  # fmt: skip
    finished(
        store, {"learning_rate": 2e-5, "num_train_epochs": 3.0}, 0.6863, **mrpc_metrics(0.6863)
    )
    finished(store, {"learning_rate": 5e-5, "num_train_epochs": 3}, 0.6900, **mrpc_metrics(0.69))
    finished(store, {"learning_rate": 2e-5, "num_train_epochs": 5}, 0.6838,
             **mrpc_metrics(0.6838, majority))  # fmt: skip
    sweep_id = store.sweep_id("small")
    assert sweep_id is not None
    runs = store.runs_with_params(sweep_id, baseline_values(store.search_basis(sweep_id)) or {})
    assert [run.objective for run in runs] == [0.6838, 0.6863]  # 3 and 3.0 are one value
    assert runs[0].degenerate == majority and runs[0].label_counts == [129, 279]
    assert runs[0].half_width == pytest.approx(0.045)
    counts = store.outcome_counts(sweep_id)
    assert (counts.completed, counts.degenerate, counts.example) == (4, 2, (first, majority))
    found = store.training_extent(sweep_id)
    assert found == extent(learning_rate=(2e-5, 5e-5), epochs=(3.0, 5.0))
    assert found.max_steps_bound == 125
    best = store.best_run(sweep_id, maximize=True)
    assert best is not None and best.objective == 0.69


def test_a_sweep_whose_best_is_within_noise_of_the_baseline_gets_its_causes(store: Store) -> None:
    store.create_sweep("small", SPEC, [("screen", "ofat")])
    finished(store, {"learning_rate": 2e-5, "num_train_epochs": 3}, 0.6838, **mrpc_metrics(0.6838))
    finished(store, {"learning_rate": 5e-5, "num_train_epochs": 3}, 0.6900, **mrpc_metrics(0.69))
    warnings = sweep_warnings(store, store.sweep_row("small"), "accuracy", True)
    assert warnings == [
        "no trial beats the baseline by more than its noise: best accuracy 0.6900 (trial 2) "
        "vs baseline 0.6838 (n=1) is +0.0062, within the noise 0.0636",
        "likely cause: " + (few_steps_cause(extent()) or ""),
        "likely cause: "
        + (dominant_class_cause([129, 279], ["not_equivalent", "equivalent"]) or ""),
    ]


def test_a_sweep_that_clears_its_baseline_has_no_warnings(store: Store) -> None:
    store.create_sweep("small", SPEC, [("screen", "ofat")])
    finished(store, {"learning_rate": 2e-5, "num_train_epochs": 3}, 0.6838, **mrpc_metrics(0.6838))
    only_the_baseline = sweep_warnings(store, store.sweep_row("small"), "accuracy", True)
    assert only_the_baseline == []  # nothing else has finished: nothing to compare yet
    finished(store, {"learning_rate": 5e-5, "num_train_epochs": 3}, 0.8500, **mrpc_metrics(0.85))
    assert sweep_warnings(store, store.sweep_row("small"), "accuracy", True) == []
