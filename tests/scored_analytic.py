"""The analytic landscape scored as accuracy on 400 validation rows, run as a real runner
(`runner="python:tests.scored_analytic:run"`), for tests that need what a real
fine-tune stores and the loss-valued tests/analytic.py cannot give: validation
predictions, and from them (through workers.noise, as a real trial) the Wilson interval
of the objective and, for a collapsed model, the degenerate reason.

accuracy = 0.90 - 0.05*|log10(learning_rate) + 4.3| - 0.5*|weight_decay - 0.05|
           - 0.00001*warmup_steps + 0.005*sin(1.7*repeat + 0.3)
rounded to whole rows. Learning rates below 1.2e-5 collapse onto class 1 ("pos"), which
is 220 of the 400 rows: accuracy 0.55, the majority-class rate, flagged degenerate.
"""

from __future__ import annotations

import math
from typing import Any

from sweepctl.storage import Store, TrialState
from sweepctl.workers.job import JobResult, TrialJob
from sweepctl.workers.lifecycle import NewTrial, trial_lifecycle
from sweepctl.workers.noise import evaluation_noise
from sweepctl.workers.predictions import ValidationPredictions
from sweepctl.workers.rows import EvaluationRow

ROWS = 400
POSITIVE = 220
LABELS = ["neg", "pos"]
COLLAPSE_BELOW = 1.2e-5


def accuracy(params: dict[str, Any], repeat: int = 0) -> float:
    """Whole rows of 400, as a real evaluation set scores."""
    if params["learning_rate"] < COLLAPSE_BELOW:
        return POSITIVE / ROWS
    value = 0.90 - 0.05 * abs(math.log10(params["learning_rate"]) + 4.3)
    value -= 0.5 * abs(params["weight_decay"] - 0.05) + 0.00001 * params["warmup_steps"]
    value += 0.005 * math.sin(1.7 * repeat + 0.3)
    return round(value * ROWS) / ROWS


def predictions(params: dict[str, Any], repeat: int) -> ValidationPredictions:
    """Right on `accuracy * 400` rows, wrong on both classes in proportion; a collapsed
    model answers class 1 everywhere."""
    labels = [1] * POSITIVE + [0] * (ROWS - POSITIVE)
    if params["learning_rate"] < COLLAPSE_BELOW:
        return ValidationPredictions.from_ids(labels, [1] * ROWS, 2)
    wrong = ROWS - round(accuracy(params, repeat) * ROWS)
    wrong_pos = wrong * POSITIVE // ROWS
    flipped = set(range(wrong_pos)) | set(range(POSITIVE, POSITIVE + wrong - wrong_pos))
    predicted = [1 - label if i in flipped else label for i, label in enumerate(labels)]
    return ValidationPredictions.from_ids(labels, predicted, 2)


def values(job: TrialJob) -> dict[str, Any]:
    """The three landscape parameters, searched or not (the resolved spec has them all)."""
    training = job.spec["training"]
    return {k: training[k] for k in ("learning_rate", "weight_decay", "warmup_steps")}


def run(job: TrialJob, sinks: list[Any]) -> JobResult:
    point = values(job)
    final = accuracy(point, job.repeat)
    epochs = int(job.spec["training"].get("num_train_epochs", 4))
    curve = [final - 0.01 * (epochs - e) for e in range(1, epochs + 1)]
    new = NewTrial(job.sweep, job.spec, job.params, job.stage, job.optuna_number)
    config = {"runner": "scored_analytic"}
    with (
        Store(job.db_url) as store,
        trial_lifecycle(store, config, trial_id=job.trial_id, new=new) as trial,
    ):
        trial.sinks = list(sinks)
        for epoch, value in enumerate(curve, 1):
            scores = {"accuracy": value}
            trial.record(EvaluationRow(float(epoch), epoch, None, 1.0 - value, None, None, scores))
        noise = evaluation_noise(predictions(point, job.repeat), "accuracy", LABELS)
        metrics = {"accuracy": final, "epoch": float(epochs), **noise}
        resources = {"wall_time_s": 0.01, "evaluations": epochs}
        trial.finish(TrialState.COMPLETED, objective=final, metrics=metrics, resources=resources)
    failure = trial.failure
    return JobResult(
        job.optuna_number,
        trial.state.value,
        objective=None if failure else final,
        trial_id=trial.id,
        epochs_run=epochs,
        max_epochs=epochs,
        error=failure.reason if failure else None,
        failure_kind=failure.kind if failure else None,
    )
