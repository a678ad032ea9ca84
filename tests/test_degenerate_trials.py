"""A single trial's evaluation noise and the degenerate flag: the compact predictions, the
rule on hand-made predictions, and one real tiny-BERT trial that learnt nothing, read back
through `sweepctl show`, the API, the trial page, the CSV export and W&B's summary."""

from __future__ import annotations

import base64
import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sweepctl.cli import main
from sweepctl.orchestrator.export import trials_csv
from sweepctl.service.app import create_app
from sweepctl.service.dashboard_data import noise_fields
from sweepctl.service.formatting import number
from sweepctl.service.settings import ServeSettings
from sweepctl.stats import Interval
from sweepctl.storage import Store, TrialState
from sweepctl.workers.lifecycle import LiveTrial
from sweepctl.workers.noise import evaluation_noise, scored_metric
from sweepctl.workers.predictions import ValidationPredictions
from tests.conftest import sentiment_rows, write_csv
from tests.service_client import TOKEN, local_client

MRPC_NAMES = ["not_equivalent", "equivalent"]


def mrpc_like_tie() -> ValidationPredictions:
    """408 rows, 279 of class 1 (MRPC's dev split): a model that predicts both classes yet
    is right on exactly as many rows (279) as always answering class 1 would be."""
    labels = [1] * 279 + [0] * 129
    predicted = [0] * 20 + [1] * 259 + [0] * 20 + [1] * 109
    return ValidationPredictions.from_ids(labels, predicted, 2)


def right_on(labels: Any, share: float, classes: int, seed: int = 0) -> ValidationPredictions:
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    wrong = rng.random(labels.size) > share
    predicted = np.where(wrong, (labels + rng.integers(1, classes, labels.size)) % classes, labels)
    return ValidationPredictions.from_ids(labels, predicted, classes)


def noise_of(predictions: ValidationPredictions, objective: str, **kw: Any) -> dict[str, Any]:
    noise = evaluation_noise(predictions, objective, **kw)
    assert noise.pop("validation_predictions") == predictions.to_dict()
    return noise


# --- the compact predictions --------------------------------------------------------------


def test_predictions_survive_json_and_cost_a_byte_per_row_and_label() -> None:
    rng = np.random.default_rng(0)
    labels, predicted = rng.integers(0, 3, 872), rng.integers(0, 3, 872)
    stored = ValidationPredictions.from_ids(labels, predicted, 3).to_dict()
    read = ValidationPredictions.from_dict(json.loads(json.dumps(stored)))
    assert read.label_ids() == labels.tolist() and read.predicted_ids() == predicted.tolist()
    assert read.classes == 3 and read.rows == 872
    assert len(stored["labels"]) == len(stored["predicted"]) == 4 * math.ceil(872 / 3)  # base64
    assert base64.b64decode(stored["labels"]) == bytes(labels.astype(np.uint8))


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ({"classes": 2, "labels": "AAE="}, "lack 'predicted'"),
        ({"classes": 2, "labels": "AAE=", "predicted": "not base64!"}, "not base64"),
        ({"classes": 2, "labels": "AAE=", "predicted": "AAI="}, "outside 0-1"),
        ({"classes": 2, "labels": "AAE=", "predicted": "AA=="}, "as many predictions"),
        ({"classes": 1, "labels": "AA==", "predicted": "AA=="}, "classes must be"),
    ],
)
def test_malformed_stored_predictions_are_value_errors(
    stored: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ValidationPredictions.from_dict(stored)


def test_class_ids_beyond_a_byte_are_refused_with_the_range() -> None:
    with pytest.raises(ValueError, match="class ids must be in 0-1"):
        ValidationPredictions.from_ids([0, 300], [0, 1], 2)


# --- the rule on hand-made predictions ----------------------------------------------------


def test_a_single_class_predictor_is_named_with_its_class_and_rows() -> None:
    single = ValidationPredictions.from_ids([0] * 129 + [1] * 279, [1] * 408, 2)
    assert noise_of(single, "f1")["degenerate"] == "predicts only class 1 on 408 of 408 rows"
    named = noise_of(single, "accuracy", label_names=MRPC_NAMES)["degenerate"]
    assert named == "predicts only class 1 (equivalent) on 408 of 408 rows"


def test_accuracy_tied_with_the_majority_rate_is_degenerate_with_its_interval() -> None:
    noise = noise_of(mrpc_like_tie(), "accuracy")
    assert noise["degenerate"] == (
        "accuracy 0.684 does not beat the majority-class rate 0.684 (95% interval 0.637-0.727)"
    )
    assert Interval.from_dict(noise["objective_interval"]).method == "wilson"


def test_f1_below_always_predicting_class_1_is_degenerate() -> None:
    noise = noise_of(mrpc_like_tie(), "f1", label_names=MRPC_NAMES)
    interval = Interval.from_dict(noise["objective_interval"])
    assert interval.method == "bootstrap" and interval.n == 408
    always_positive = 2 * 279 / (279 + 408)  # precision 279/408, recall 1
    assert noise["degenerate"].startswith(
        f"f1 {interval.estimate:.3f} does not beat the f1 of always predicting class 1 "
        f"(equivalent) {always_positive:.3f} (95% interval"
    )


@pytest.mark.parametrize("objective", ["accuracy", "f1", "precision", "recall"])
def test_a_genuinely_good_binary_predictor_is_not_flagged(objective: str) -> None:
    noise = noise_of(right_on([0, 1] * 200, 0.9, 2), objective)
    interval = Interval.from_dict(noise["objective_interval"])
    assert "degenerate" not in noise
    assert interval.contains(interval.estimate) and interval.high - interval.low > 0.02


def test_three_classes_are_judged_against_chance_one_in_three() -> None:
    labels = [0, 1, 2] * 50
    guessing = noise_of(right_on(labels, 1 / 3, 3, seed=4), "f1_macro")
    assert (
        "does not beat the macro f1 of guessing at the class frequencies 0.333"
        in (guessing["degenerate"])
    )
    assert guessing["degenerate"].startswith("f1_macro ")
    assert "degenerate" not in noise_of(right_on(labels, 0.8, 3), "f1")


def test_a_loss_objective_has_no_interval_but_is_still_judged_on_accuracy() -> None:
    noise = noise_of(mrpc_like_tie(), "loss")
    assert "objective_interval" not in noise
    assert noise["degenerate"].startswith("accuracy 0.684 does not beat the majority-class")


@pytest.mark.parametrize(
    ("objective", "classes", "scored"),
    [("f1", 2, "f1"), ("f1_macro", 3, "f1"), ("f1_macro", 2, None), ("f1_weighted", 3, None)],
)
def test_only_objectives_the_bootstrap_scores_identically_get_an_interval(
    objective: str, classes: int, scored: str | None
) -> None:
    assert scored_metric(objective, classes) == scored


def test_a_run_without_predictions_gains_nothing() -> None:
    assert evaluation_noise(None, "accuracy") == {}


def test_w_and_b_hears_the_bounds_and_the_reason_but_never_the_predictions(
    sqlite_url: str,
) -> None:
    summaries: list[dict[str, Any]] = []
    noise = evaluation_noise(mrpc_like_tie(), "accuracy")
    with Store(sqlite_url) as store:
        trial_id = store.create_trial("noise", {"name": "noise"}, {}, {})
        store.set_trial_state(trial_id, TrialState.RUNNING)
        trial = LiveTrial(store, trial_id, on_end=[lambda _, summary: summaries.append(summary)])
        trial.finish(TrialState.COMPLETED, objective=0.68, metrics=noise, resources={})
        assert store.get_trial(trial_id).metrics == noise
    (summary,) = summaries
    assert summary["objective_low"] == noise["objective_interval"]["low"]
    assert summary["objective_high"] == noise["objective_interval"]["high"]
    assert summary["degenerate"] == noise["degenerate"]
    assert "validation_predictions" not in summary and "objective_interval" not in summary


def test_the_trial_detail_lifts_the_noise_and_drops_the_raw_predictions() -> None:
    noise = evaluation_noise(mrpc_like_tie(), "accuracy")
    fields = noise_fields({"accuracy": 0.68, **noise})
    assert fields["objective_interval"] == noise["objective_interval"]
    assert fields["degenerate"] == noise["degenerate"]
    assert set(fields["metrics"]) == {"accuracy", "objective_interval", "degenerate"}
    assert noise_fields(None) == {"metrics": None, "objective_interval": None, "degenerate": None}
    assert number(noise["objective_interval"]) == "0.6838 (0.6372–0.727)"


# --- one real trial that learnt nothing ---------------------------------------------------


@pytest.fixture
def degenerate_spec(tiny_spec: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """16 training rows, one epoch at a learning rate that cannot move a random head."""
    spec = copy.deepcopy(tiny_spec)
    train = write_csv(
        tmp_path / "few" / "train.csv", ["text", "label"], sentiment_rows(1, "pos", "neg")
    )
    spec["dataset"]["data_files"]["train"] = str(train)
    spec["training"] |= {"learning_rate": 1e-7, "num_train_epochs": 1}
    spec["objective"] = {"metric": "accuracy"}
    return spec


def test_a_tiny_bert_that_learnt_nothing_is_stored_degenerate_and_shown_so(
    degenerate_spec: dict[str, Any],
    write_spec: Any,
    home: Path,
    sqlite_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec_path = str(write_spec(degenerate_spec))
    argv = ["trial", spec_path, "--db", sqlite_url, "--json", "--no-progress"]
    assert main(argv) == 0
    record = json.loads(capsys.readouterr().out)
    metrics = record["metrics"]
    predictions = ValidationPredictions.from_dict(metrics["validation_predictions"])
    (only,) = set(predictions.predicted_ids())
    name = ["neg", "pos"][only]
    assert metrics["degenerate"] == f"predicts only class {only} ({name}) on 16 of 16 rows"
    interval = Interval.from_dict(metrics["objective_interval"])
    assert interval.contains(record["objective"]) and interval.estimate == record["objective"]
    assert (interval.method, interval.n) == ("wilson", 16)
    assert predictions.label_counts() == [sum(row) for row in metrics["confusion_matrix"]]
    assert all("validation_predictions" not in e["metrics"] for e in record["evaluations"])

    assert main(["show", str(record["id"]), "--db", sqlite_url]) == 0
    shown = capsys.readouterr().out
    assert f"degenerate: predicts only class {only}" in shown and "95% interval" in shown
    _read_back_by_the_service_and_the_export(record, sqlite_url, home)


def _read_back_by_the_service_and_the_export(
    record: dict[str, Any], sqlite_url: str, home: Path
) -> None:
    blob = record["metrics"]["validation_predictions"]["labels"]
    settings = ServeSettings(db_url=sqlite_url, home=str(home), run_controller=False, token=TOKEN)
    with local_client(create_app(settings)) as client:
        detail = client.get(f"/api/v1/trials/{record['id']}").json()
        page = client.get(f"/trials/{record['id']}").text
    assert detail["degenerate"] == record["metrics"]["degenerate"]
    assert detail["objective_interval"] == record["metrics"]["objective_interval"]
    assert "validation_predictions" not in detail["metrics"]
    assert "predicts only class" in page and blob not in page
    with Store(sqlite_url, read_only=True) as store:
        csv_text, rows = trials_csv(store, record["sweep_name"])
    assert rows == 1 and blob not in csv_text
