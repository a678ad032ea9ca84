"""The bridge from Trainer's event stream to sweepctl's per-evaluation rows.

Trainer logs the training loss, learning rate and gradient norm in one event and the
evaluation metrics in another; users want them on one row per epoch (the table they used
to copy by hand), so the recorder joins them and hands each finished row to its sinks
(the store, W&B, the console). Sinks are plain callables so a later pruner can be one too.
"""

from __future__ import annotations

import math
from typing import Any

from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import ProgressCallback

from sweepctl.workers.metrics import ClassificationMetrics
from sweepctl.workers.rows import EvaluationRow, NonFiniteLossError, Sink

TABLE_METRICS = ("accuracy", "f1", "precision", "recall")


class EvaluationRecorder(TrainerCallback):
    def __init__(self, metrics: ClassificationMetrics, sinks: list[Sink]) -> None:
        self.metrics = metrics
        self.sinks = sinks
        self.rows: list[EvaluationRow] = []
        self._train_log: dict[str, float] = {}

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if logs and "loss" in logs:
            self._train_log = {
                k: logs[k] for k in ("loss", "learning_rate", "grad_norm") if k in logs
            }

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        if not metrics or "eval_loss" not in metrics:
            return  # the final test-split evaluation is reported separately
        row = EvaluationRow(
            epoch=round(float(state.epoch or 0.0), 4),
            step=int(state.global_step),
            training_loss=_number(self._train_log.get("loss")),
            eval_loss=_number(metrics.get("eval_loss")),
            learning_rate=_number(self._train_log.get("learning_rate")),
            grad_norm=_number(self._train_log.get("grad_norm")),
            metrics=_eval_scalars(metrics),
            details=self.metrics.last_details,
            predictions=self.metrics.last_predictions,
        )
        self.rows.append(row)
        for sink in self.sinks:
            sink(row)


def _eval_scalars(metrics: dict[str, Any]) -> dict[str, float]:
    # the loss has its own column (eval_loss); the timings are not model quality
    skip = {"eval_loss", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second"}
    return {
        key.removeprefix("eval_"): float(value)
        for key, value in metrics.items()
        if key.startswith("eval_") and key not in skip and isinstance(value, (int, float))
    }


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


class EpochProgress(ProgressCallback):
    """Trainer's progress bar, minus the raw log dict it prints at every log event: the
    console gets one readable line per evaluation instead (`print_row`)."""

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        return None

    def print_row(self, row: EvaluationRow) -> None:
        parts = [f"epoch {row.epoch:g}"]
        if row.training_loss is not None:
            parts.append(f"train loss {row.training_loss:.4f}")
        if row.eval_loss is not None:
            parts.append(f"val loss {row.eval_loss:.4f}")
        parts += [f"{m} {row.metrics[m]:.4f}" for m in TABLE_METRICS if m in row.metrics]
        line = "  ".join(parts)
        if self.training_bar is not None:
            self.training_bar.write(line)
        else:
            print(line)


class GuardedTrainer(Trainer):
    """Trainer that ends the run at the first NaN/inf loss instead of averaging it away
    (Trainer's default `logging_nan_inf_filter` hides it and the run burns on)."""

    def training_step(
        self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None
    ) -> Any:
        loss = super().training_step(model, inputs, num_items_in_batch)
        value = float(loss.detach())
        if not math.isfinite(value):
            epoch = float(self.state.epoch or 0.0)
            raise NonFiniteLossError(
                f"training loss became {value} at step {self.state.global_step + 1} "
                f"(epoch {epoch:.2f}); lower learning_rate or check the data"
            )
        return loss


__all__ = [
    "TABLE_METRICS",
    "EpochProgress",
    "EvaluationRecorder",
    "EvaluationRow",
    "GuardedTrainer",
    "NonFiniteLossError",
]
