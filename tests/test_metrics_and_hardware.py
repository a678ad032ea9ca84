"""Metric definitions users compare against their reports, and the precision choice per GPU."""

from __future__ import annotations

import numpy as np
import pytest

from sweepctl.workers.arguments import Hardware, precision_settings
from sweepctl.workers.metrics import classification_scores


def test_binary_scores_are_for_the_positive_class() -> None:
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    predicted = np.array([1, 1, 0, 1, 0, 0, 0, 0])
    scores, details = classification_scores(labels, predicted, ["neg", "pos"])
    assert scores["accuracy"] == pytest.approx(6 / 8)
    assert scores["precision"] == pytest.approx(2 / 3)  # 2 true positives of 3 predicted
    assert scores["recall"] == pytest.approx(2 / 3)  # 2 of 3 actual positives
    assert scores["f1"] == pytest.approx(2 / 3)
    assert details["confusion_matrix"] == [[4, 1], [1, 2]]
    assert details["per_class_recall"] == {"neg": pytest.approx(0.8), "pos": pytest.approx(2 / 3)}
    assert details["support"] == {"neg": 5, "pos": 3}


def test_multiclass_reports_macro_and_weighted_and_keeps_absent_classes() -> None:
    names = ["A1", "A2", "B1"]
    labels = np.array([0, 0, 0, 0, 1, 1])
    predicted = np.array([0, 0, 0, 1, 1, 0])
    scores, details = classification_scores(labels, predicted, names)
    recall_a1, recall_a2, recall_b1 = 3 / 4, 1 / 2, 0.0
    assert scores["recall_macro"] == pytest.approx((recall_a1 + recall_a2 + recall_b1) / 3)
    assert scores["recall_weighted"] == pytest.approx((4 * recall_a1 + 2 * recall_a2) / 6)
    assert scores["f1"] == scores["f1_macro"]
    assert details["confusion_matrix"] == [[3, 1, 0], [1, 1, 0], [0, 0, 0]]
    assert details["per_class_recall"]["B1"] == 0.0


@pytest.mark.parametrize(
    ("hardware", "training", "expected"),
    [
        (Hardware(False, False, None, "cpu"), {}, {}),
        (Hardware(True, True, (9, 0), "H100"), {}, {"bf16": True, "tf32": True}),
        (Hardware(True, True, (8, 0), "A100"), {"fp16": True}, {"tf32": True}),
        (Hardware(True, False, (7, 5), "T4"), {}, {"fp16": True}),
        (Hardware(True, True, (8, 6), "A10"), {"bf16": False, "tf32": False}, {}),
    ],
)
def test_precision_follows_the_gpu_unless_the_spec_says(
    hardware: Hardware, training: dict[str, bool], expected: dict[str, bool]
) -> None:
    assert precision_settings(training, hardware) == expected
