"""Documented fault injection: real failures where the machine cannot produce them.

`SWEEPCTL_FAULT_OOM_AT_STEP=k` makes the first attempt of every transformer trial raise
`torch.OutOfMemoryError` when training reaches optimizer step k, as CUDA does when a batch
does not fit. Why a hook and not a mock: everything after the raise is the real path (the
trial ends FAILED with kind `oom`, the orchestrator retries it with a smaller batch, the
retry trains for real), and a CPU-only CI can test it. Only first attempts fail, so the
retry shows what the fallback does. The variable is forwarded to Ray workers the sweep
starts (orchestrator.backends).
"""

from __future__ import annotations

import os
from typing import Any

from transformers import TrainerCallback

OOM_AT_STEP = "SWEEPCTL_FAULT_OOM_AT_STEP"


class InjectedOutOfMemory(TrainerCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step >= self.step:
            import torch

            raise torch.OutOfMemoryError(
                f"CUDA out of memory (injected by {OOM_AT_STEP}={self.step} at step "
                f"{state.global_step})"
            )


def fault_callbacks(attempt: int) -> list[Any]:
    """The Trainer callbacks the environment asks for on this attempt; usually none."""
    step = os.environ.get(OOM_AT_STEP, "").strip()
    if not step or attempt != 1:
        return []
    return [InjectedOutOfMemory(int(step))]
