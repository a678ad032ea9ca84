"""A single trial's evaluation noise, and whether the trial learnt anything at all.

Why: on a few hundred validation rows one row moves accuracy by a quarter point, and a
model that collapsed onto one class can still post a respectable-looking score (SST-2's
majority class alone scores accuracy 0.51, MRPC's 0.68). So every trial that kept its
validation predictions gets, in its finished `metrics`:

    objective_interval  Interval.to_dict() of the objective: Wilson for accuracy, a
                        bootstrap over the rows for F1, precision and recall; absent for
                        loss and for averages sweepctl.stats cannot re-score (weighted,
                        and macro on a binary task)
    degenerate          the reason, present only when the trial predicts a single class or
                        its score does not clear chance by more than its own noise (the
                        interval's lower end is at or below the chance level)

Chance, per metric (the best a predictor that ignores its input can do):
    accuracy                the majority-class rate
    binary f1, precision    always predicting class 1 (precision: the positive rate)
    binary recall           guessing class 1 as often as this model does (always predicting
                            class 1 has recall 1 by construction, so it cannot be the bar)
    macro averages          1/k: guessing at the class frequencies scores each class at its
                            own frequency; always predicting the majority class scores less
The metric judged is the objective where it has an interval, accuracy otherwise, so a
loss-objective trial stuck at the majority rate is named too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sweepctl.stats import Interval, bootstrap_interval, wilson_interval
from sweepctl.stats.bootstrap import score
from sweepctl.workers.predictions import PREDICTIONS_KEY, ValidationPredictions

OBJECTIVE_INTERVAL_KEY = "objective_interval"
DEGENERATE_KEY = "degenerate"
SCORED_METRICS = ("accuracy", "f1", "precision", "recall")


def evaluation_noise(
    predictions: ValidationPredictions | None,
    objective: str,
    label_names: Sequence[str] = (),
) -> dict[str, Any]:
    """The keys a finished trial's metrics gain from its best checkpoint's predictions;
    nothing for a run without predictions (the NMTLC replay, custom runners)."""
    if predictions is None:
        return {}
    interval_metric = scored_metric(objective, predictions.classes)
    judged = interval_metric or "accuracy"
    interval = metric_interval(predictions, judged)
    noise: dict[str, Any] = {PREDICTIONS_KEY: predictions.to_dict()}
    if interval_metric is not None:
        noise[OBJECTIVE_INTERVAL_KEY] = interval.to_dict()
    shown_as = objective if interval_metric is not None else judged
    reason = single_class_reason(predictions, label_names) or chance_reason(
        predictions, judged, interval, shown_as, label_names
    )
    if reason is not None:
        noise[DEGENERATE_KEY] = reason
    return noise


def scored_metric(objective: str, classes: int) -> str | None:
    """The sweepctl.stats metric that scores `objective` exactly as workers.metrics does
    (binary: class 1; more classes: the macro average), or None when none does."""
    if objective in SCORED_METRICS:
        return objective
    base, _, average = objective.partition("_")
    if average == "macro" and classes > 2 and base in SCORED_METRICS:
        return base
    return None


def metric_interval(predictions: ValidationPredictions, metric: str) -> Interval:
    if metric == "accuracy":
        return wilson_interval(predictions.correct, predictions.rows)
    return bootstrap_interval(
        predictions.label_ids(), predictions.predicted_ids(), metric, predictions.classes
    )


def single_class_reason(
    predictions: ValidationPredictions, label_names: Sequence[str] = ()
) -> str | None:
    predicted = set(predictions.predicted)
    if len(predicted) > 1:
        return None
    (only,) = predicted
    rows = predictions.rows
    return f"predicts only class {class_name(only, label_names)} on {rows} of {rows} rows"


def chance_reason(
    predictions: ValidationPredictions,
    metric: str,
    interval: Interval,
    shown_as: str,
    label_names: Sequence[str] = (),
) -> str | None:
    """Why `interval` of `metric` does not clear chance, or None when it does."""
    level, description = chance_level(predictions, metric, label_names)
    if interval.low > level:
        return None
    return (
        f"{shown_as} {interval.estimate:.3f} does not beat {description} {level:.3f} "
        f"({interval.confidence:.0%} interval {interval.low:.3f}-{interval.high:.3f})"
    )


def chance_level(
    predictions: ValidationPredictions, metric: str, label_names: Sequence[str] = ()
) -> tuple[float, str]:
    """The chance level of `metric` on these labels and how the reason names it (see the
    module docstring for why each)."""
    rows, classes = predictions.rows, predictions.classes
    if metric == "accuracy":
        return max(predictions.label_counts()) / rows, "the majority-class rate"
    if classes > 2:
        return 1.0 / classes, f"the macro {metric} of guessing at the class frequencies"
    positive = class_name(1, label_names)
    if metric == "recall":
        rate = predictions.predicted_counts()[1] / rows
        return rate, f"the recall of guessing class {positive} at this model's rate"
    always_positive = score(predictions.label_ids(), [1] * rows, metric, classes)
    return always_positive, f"the {metric} of always predicting class {positive}"


def class_name(class_id: int, label_names: Sequence[str] = ()) -> str:
    """`1`, or `1 (positive)` when the label has a name of its own."""
    if class_id < len(label_names) and label_names[class_id] != str(class_id):
        return f"{class_id} ({label_names[class_id]})"
    return str(class_id)


def summary_fields(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """What W&B's run summary shows of the noise: the interval's bounds and the reason,
    as scalars and a short string; never the predictions themselves."""
    fields: dict[str, Any] = {}
    interval = metrics.get(OBJECTIVE_INTERVAL_KEY)
    if isinstance(interval, Mapping):
        fields["objective_low"] = interval.get("low")
        fields["objective_high"] = interval.get("high")
    if isinstance(metrics.get(DEGENERATE_KEY), str):
        fields[DEGENERATE_KEY] = metrics[DEGENERATE_KEY]
    return fields
