"""Classification metrics for every evaluation, in the names users put in their reports.

Binary tasks report the positive class (label 1) for F1/precision/recall, as papers do;
multi-class tasks report macro and weighted averages, with `f1`/`precision`/`recall`
meaning the macro average so that `objective.metric: f1` works for both. Per-class recall
and the confusion matrix are not scalars, so Trainer cannot log them: they are kept aside
per evaluation and joined to the trial's result afterwards. The row-level predictions are
kept aside too (workers.predictions), for the best checkpoint's evaluation interval.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from sweepctl.workers.predictions import MAX_CLASSES, ValidationPredictions


class ClassificationMetrics:
    """The `compute_metrics` callable for Trainer; remembers the last evaluation's details
    and predictions (None beyond MAX_CLASSES labels, which one byte cannot hold)."""

    def __init__(self, label_names: list[str]) -> None:
        self.label_names = label_names
        self.last_details: dict[str, Any] = {}
        self.last_predictions: ValidationPredictions | None = None

    def __call__(self, prediction: Any) -> dict[str, float]:
        logits = prediction.predictions
        if isinstance(logits, tuple):
            logits = logits[0]
        predicted = np.asarray(logits).argmax(axis=-1)
        labels = np.asarray(prediction.label_ids)
        scores, details = classification_scores(labels, predicted, self.label_names)
        self.last_details = details
        classes = len(self.label_names)
        self.last_predictions = (
            ValidationPredictions.from_ids(labels, predicted, classes)
            if classes <= MAX_CLASSES
            else None
        )
        return scores


def classification_scores(
    labels: np.ndarray, predicted: np.ndarray, label_names: list[str]
) -> tuple[dict[str, float], dict[str, Any]]:
    ids = list(range(len(label_names)))
    scores = {"accuracy": float(accuracy_score(labels, predicted))}
    if len(label_names) == 2:
        p, r, f, _ = precision_recall_fscore_support(
            labels, predicted, average="binary", pos_label=1, zero_division=0
        )
        scores |= {"precision": float(p), "recall": float(r), "f1": float(f)}
    else:
        for average in ("macro", "weighted"):
            p, r, f, _ = precision_recall_fscore_support(
                labels, predicted, labels=ids, average=average, zero_division=0
            )
            scores |= {
                f"precision_{average}": float(p),
                f"recall_{average}": float(r),
                f"f1_{average}": float(f),
            }
        scores |= {
            "precision": scores["precision_macro"],
            "recall": scores["recall_macro"],
            "f1": scores["f1_macro"],
        }
    _, per_class_recall, _, support = precision_recall_fscore_support(
        labels, predicted, labels=ids, average=None, zero_division=0
    )
    details = {
        "per_class_recall": {
            name: float(r) for name, r in zip(label_names, per_class_recall, strict=True)
        },
        "support": {name: int(s) for name, s in zip(label_names, support, strict=True)},
        "confusion_matrix": confusion_matrix(labels, predicted, labels=ids).tolist(),
        "labels": list(label_names),
    }
    return scores, details
