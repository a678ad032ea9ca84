"""Documented fault injection: real failures where the machine cannot produce them.

`SWEEPCTL_FAULT_OOM_AT_STEP=k` makes the first attempt of every transformer trial raise
`torch.OutOfMemoryError` when training reaches optimizer step k, as CUDA does when a batch
does not fit. Why a hook and not a mock: everything after the raise is the real path (the
trial ends FAILED with kind `oom`, the orchestrator retries it with a smaller batch, the
retry trains for real), and a CPU-only CI can test it. Only first attempts fail, so the
retry shows what the fallback does.

`SWEEPCTL_FAULT_KILL_AFTER_EPOCH=k` SIGKILLs the worker process of a first attempt right
after the checkpoint of epoch k is saved: a lost worker at a known point, whose retry
continues from that checkpoint (workers.continuation). Only on a worker process (the Ray
backend): inline, it would kill the sweep itself.

Both variables are forwarded to the Ray workers a sweep starts (orchestrator.backends).
"""

from __future__ import annotations

import os
import signal
from typing import Any

from transformers import TrainerCallback

OOM_AT_STEP = "SWEEPCTL_FAULT_OOM_AT_STEP"
KILL_AFTER_EPOCH = "SWEEPCTL_FAULT_KILL_AFTER_EPOCH"


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


class KilledAfterSave(TrainerCallback):
    """SIGKILL of the worker itself once the checkpoint of epoch k is on disk: a worker
    lost mid-trial, at a known point, for the continuation tests."""

    def __init__(self, epoch: float) -> None:
        self.epoch = epoch

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if float(state.epoch or 0.0) >= self.epoch:
            os.kill(os.getpid(), signal.SIGKILL)


def fault_callbacks(attempt: int) -> list[Any]:
    """The Trainer callbacks the environment asks for on this attempt; usually none."""
    if attempt != 1:
        return []
    callbacks: list[Any] = []
    step = os.environ.get(OOM_AT_STEP, "").strip()
    if step:
        callbacks.append(InjectedOutOfMemory(int(step)))
    epoch = os.environ.get(KILL_AFTER_EPOCH, "").strip()
    if epoch:
        callbacks.append(KilledAfterSave(float(epoch)))
    return callbacks
