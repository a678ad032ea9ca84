"""One evaluation as sweepctl records it, and the sinks that receive it.

Kept free of torch and transformers so runners that train nothing (the NMTLC replay, the
no-op overhead runner) start in a fraction of a second.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sweepctl.workers.predictions import ValidationPredictions


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; the trial cannot recover from that."""


@dataclass(frozen=True)
class EvaluationRow:
    epoch: float
    step: int
    training_loss: float | None
    eval_loss: float | None
    learning_rate: float | None
    grad_norm: float | None
    metrics: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)
    # the rows behind `metrics`; not stored per evaluation, only the best one's on the trial
    predictions: ValidationPredictions | None = None

    def metric(self, name: str) -> float | None:
        return self.eval_loss if name == "loss" else self.metrics.get(name)


Sink = Callable[[EvaluationRow], None]
