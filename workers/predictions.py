"""The best checkpoint's validation predictions, kept compactly on the finished trial.

Why keep them at all: F1's evaluation-set interval depends on which rows were right, of
which class, and a confusion matrix cannot be resampled into it; the confirm stage and any
later re-scoring need the rows themselves. Why this form: one byte per row for the true
label and one for the predicted label, base64 in the JSON the store already keeps, so
SST-2's 872 validation rows cost about 2.3 KB. They are stored once, under the finished
trial's `metrics["validation_predictions"]`, never on every evaluation row, and they are
kept out of W&B, the CSV export and the dashboard's metrics table.

Stored form (agreed with the confirm stage and the status/API display):

    {"classes": k, "labels": "<base64 of uint8 labels>", "predicted": "<base64 of uint8>"}
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

PREDICTIONS_KEY = "validation_predictions"
MAX_CLASSES = 256  # one byte per label


@dataclass(frozen=True)
class ValidationPredictions:
    """True and predicted class ids of every validation row, in row order."""

    classes: int
    labels: bytes
    predicted: bytes

    def __post_init__(self) -> None:
        if not 2 <= self.classes <= MAX_CLASSES:
            raise ValueError(f"classes must be 2-{MAX_CLASSES}, got {self.classes}")
        if len(self.labels) != len(self.predicted) or not self.labels:
            raise ValueError(
                f"need as many predictions as labels, at least one "
                f"({len(self.predicted)} vs {len(self.labels)})"
            )
        if max(self.labels) >= self.classes or max(self.predicted) >= self.classes:
            raise ValueError(f"a class id is outside 0-{self.classes - 1}")

    @classmethod
    def from_ids(
        cls, labels: Iterable[int], predicted: Iterable[int], classes: int
    ) -> ValidationPredictions:
        """From any integer sequences (numpy arrays included); ids must fit in a byte."""
        try:
            return cls(classes, bytes(int(i) for i in labels), bytes(int(i) for i in predicted))
        except ValueError as exc:  # bytes() refuses ids outside 0-255 with a bare message
            raise ValueError(f"class ids must be in 0-{classes - 1}: {exc}") from None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidationPredictions:
        """Reads the stored form; anything malformed is a ValueError."""
        try:
            return cls(
                int(data["classes"]),
                base64.b64decode(data["labels"], validate=True),
                base64.b64decode(data["predicted"], validate=True),
            )
        except KeyError as exc:
            raise ValueError(f"stored predictions lack {exc.args[0]!r}") from None
        except (TypeError, binascii.Error) as exc:
            raise ValueError(f"stored predictions are not base64: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": self.classes,
            "labels": base64.b64encode(self.labels).decode("ascii"),
            "predicted": base64.b64encode(self.predicted).decode("ascii"),
        }

    @property
    def rows(self) -> int:
        return len(self.labels)

    @property
    def correct(self) -> int:
        return sum(truth == guess for truth, guess in zip(self.labels, self.predicted, strict=True))

    def label_ids(self) -> list[int]:
        return list(self.labels)

    def predicted_ids(self) -> list[int]:
        return list(self.predicted)

    def label_counts(self) -> list[int]:
        """Rows per true class id."""
        return _counts(self.labels, self.classes)

    def predicted_counts(self) -> list[int]:
        """Rows per predicted class id."""
        return _counts(self.predicted, self.classes)


def _counts(ids: bytes, classes: int) -> list[int]:
    counts = [0] * classes
    for class_id in ids:
        counts[class_id] += 1
    return counts
