"""The batch a trial trains with, and the smaller one it retries with after running out of
memory.

Why not Trainer's `auto_find_batch_size`: it halves the per-device batch and leaves the
gradient accumulation alone, so the retried trial optimises with a different effective
batch (EuroEval#69) and its score is no longer that configuration's score. Here the
product `per_device_train_batch_size × gradient_accumulation_steps` never changes: the
batch goes down to its largest divisor that is at most half of it (16 → 8 → 4 → 2 → 1,
12 → 6 → 3 → 1) and the accumulation goes up by the same factor. The eval batch is halved
too; it changes no score, only the memory evaluation needs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

HF_DEFAULT_BATCH = 8  # TrainingArguments' default for both per-device batch sizes


@dataclass(frozen=True)
class Batch:
    train: int
    accumulation: int
    eval: int

    @classmethod
    def of(cls, training: dict[str, Any]) -> Batch:
        return cls(
            train=int(training.get("per_device_train_batch_size", HF_DEFAULT_BATCH)),
            accumulation=int(training.get("gradient_accumulation_steps", 1)),
            eval=int(training.get("per_device_eval_batch_size", HF_DEFAULT_BATCH)),
        )

    @property
    def effective(self) -> int:
        """Examples per optimizer step on one device: what the optimisation sees."""
        return self.train * self.accumulation

    def halved(self) -> Batch | None:
        """The next smaller batch with the same effective batch; None at a batch of 1."""
        if self.train <= 1:
            return None
        smaller = _largest_divisor_at_most_half(self.train)
        return Batch(
            train=smaller,
            accumulation=self.accumulation * (self.train // smaller),
            eval=max(1, self.eval // 2),
        )

    def training_values(self) -> dict[str, int]:
        return {
            "per_device_train_batch_size": self.train,
            "gradient_accumulation_steps": self.accumulation,
            "per_device_eval_batch_size": self.eval,
        }

    def to_dict(self) -> dict[str, int]:
        return {**asdict(self), "effective": self.effective}


def possible_halvings(training: dict[str, Any]) -> int:
    """How many times an out-of-memory retry can still shrink this batch."""
    count, batch = 0, Batch.of(training).halved()
    while batch is not None:
        count, batch = count + 1, batch.halved()
    return count


def after_halvings(training: dict[str, Any], halvings: int) -> Batch:
    """The batch after `halvings` out-of-memory retries (never below a batch of 1)."""
    batch = Batch.of(training)
    for _ in range(halvings):
        batch = batch.halved() or batch
    return batch


def _largest_divisor_at_most_half(number: int) -> int:
    for candidate in range(number // 2, 0, -1):
        if number % candidate == 0:
            return candidate
    return 1
