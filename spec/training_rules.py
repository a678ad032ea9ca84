"""What a `training:` value must be before a trial starts.

Hugging Face's TrainingArguments takes `learning_rate: fast`, a batch size of 0 or `.inf`
epochs and fails mid-trial, or never; these rules catch them at the spec. Keys without a
rule here are judged by TrainingArguments itself, so those rules never drift from HF's.
"""

from __future__ import annotations

import math
from typing import Any

from sweepctl.spec.base import FieldError

# sweepctl's own training keys: they configure its EarlyStoppingCallback, not HF's args
EXTRA_TRAINING_KEYS = {"early_stopping_patience", "early_stopping_threshold"}


def check_training_values(training: dict[str, Any], resolved: bool) -> None:
    """Types and ranges TrainingArguments does not check (it takes `learning_rate: fast`,
    a batch size of 0 or `.inf` epochs and fails mid-trial, or never), then HF's own
    judgement of the rest."""
    for key, value in training.items():
        check_hyperparameter(key, value)
    if not resolved:
        _hf_judges(training)
    patience = training.get("early_stopping_patience")
    if patience is not None and (not isinstance(patience, int) or patience < 1):
        raise FieldError(
            "early_stopping_patience", f"expected a positive integer (got {patience!r})"
        )


def _hf_judges(training: dict[str, Any]) -> None:
    """Let TrainingArguments itself judge the keys we have no rule for (VALUE_RULES), so
    those rules never drift from HF's. A spec with none skips the import of transformers
    and torch, which is what keeps `sweepctl validate` fast; a resolved trial spec skips
    it too (see RESOLVED), so a worker builds TrainingArguments once, for training."""
    ruled = {*VALUE_RULES, *EXTRA_TRAINING_KEYS, "eval_strategy", "max_steps"}
    if not set(training) - ruled:
        return
    import tempfile

    from transformers import TrainingArguments

    hf_keys = {k: v for k, v in training.items() if k not in EXTRA_TRAINING_KEYS}
    hf_keys.setdefault("eval_strategy", "epoch")
    hf_keys["save_strategy"] = hf_keys["eval_strategy"]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            TrainingArguments(output_dir=tmp, report_to="none", **hf_keys)
        except (TypeError, ValueError) as exc:
            raise ValueError(str(exc).splitlines()[0]) from None


# name -> (kind, low, high, low inclusive): what a value must be before a trial starts
VALUE_RULES: dict[str, tuple[str, float, float, bool]] = {
    "learning_rate": ("float", 0.0, math.inf, False),  # positive and finite, as the issue asks
    "weight_decay": ("float", 0.0, 10.0, True),
    "warmup_ratio": ("float", 0.0, 1.0, True),
    "max_grad_norm": ("float", 0.0, 1e6, True),
    "adam_beta1": ("float", 0.0, 1.0, True),
    "adam_beta2": ("float", 0.0, 1.0, True),
    "adam_epsilon": ("float", 0.0, 1.0, False),
    "label_smoothing_factor": ("float", 0.0, 1.0, True),
    "num_train_epochs": ("float", 0.0, 10_000.0, False),
    "per_device_train_batch_size": ("int", 1, 1_000_000, True),
    "per_device_eval_batch_size": ("int", 1, 1_000_000, True),
    "gradient_accumulation_steps": ("int", 1, 1_000_000, True),
    "warmup_steps": ("int", 0, 10_000_000, True),
    "eval_steps": ("int", 1, 10_000_000, True),
    "logging_steps": ("int", 1, 10_000_000, True),
    "seed": ("int", 0, 2**32 - 1, True),
    "data_seed": ("int", 0, 2**32 - 1, True),
}


def check_hyperparameter(key: str, value: Any) -> None:
    """Raise FieldError(key) when `value` cannot be this TrainingArguments setting.
    `max_steps: -1` is HF's "no limit" and allowed; bools are not numbers here."""
    if key == "max_steps":
        if not _is_int(value) or (value < 1 and value != -1):
            raise FieldError(key, f"expected a positive integer or -1 (got {value!r})")
        return
    rule = VALUE_RULES.get(key)
    if rule is None or value is None:
        return
    kind, low, high, low_inclusive = rule
    if kind == "int" and not _is_int(value):
        raise FieldError(key, f"expected an integer (got {value!r})")
    if kind == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise FieldError(key, f"expected a number (got {value!r})")
    number = float(value)
    if not math.isfinite(number):
        raise FieldError(key, f"expected a finite number (got {value!r})")
    too_low = number < low or (number == low and not low_inclusive)
    if too_low or number > high:
        if math.isinf(high):
            wanted = f"a finite number {'>=' if low_inclusive else '>'} {low:g}"
        else:
            wanted = f"a value in {'[' if low_inclusive else '('}{low:g}, {high:g}]"
        raise FieldError(key, f"expected {wanted} (got {value!r})")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
