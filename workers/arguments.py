"""The TrainingArguments a trial runs with: the user's values, plus what sweepctl owns.

Owned settings make every finished trial keep exactly one checkpoint (the best by the
objective; while it runs, the latest too, to continue from) and report to sweepctl's own
sinks; precision is chosen from the hardware unless the user
chose it. Everything here is a plain dict so the store and W&B record exactly what ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweepctl.spec.models import EXTRA_TRAINING_KEYS, SweepSpec


@dataclass(frozen=True)
class Hardware:
    cuda: bool
    bf16: bool
    compute_capability: tuple[int, int] | None
    device_name: str

    @classmethod
    def detect(cls) -> Hardware:
        import torch

        if not torch.cuda.is_available():
            return cls(cuda=False, bf16=False, compute_capability=None, device_name="cpu")
        return cls(
            cuda=True,
            bf16=torch.cuda.is_bf16_supported(),
            compute_capability=torch.cuda.get_device_capability(),
            device_name=torch.cuda.get_device_name(),
        )


def ray_assigned_resources() -> dict[str, float] | None:
    """What Ray gave this worker (`{"CPU": 1.0, "GPU": 0.25}` for a packed trial), or None
    outside a Ray worker: the record says where a trial ran and how much it shared."""
    try:
        import ray
    except ImportError:
        return None
    if not ray.is_initialized():
        return None
    try:
        assigned = ray.get_runtime_context().get_assigned_resources()
    except Exception:  # the driver, not a task: nothing was assigned
        return None
    return {name: float(amount) for name, amount in assigned.items()} or None


def precision_settings(training: dict[str, Any], hardware: Hardware) -> dict[str, Any]:
    """bf16 where the GPU supports it (fp16 otherwise), TF32 matmuls on Ampere and newer.
    An explicit bf16/fp16/tf32 in the spec always wins; CPUs stay in fp32."""
    if not hardware.cuda:
        return {}
    chosen: dict[str, Any] = {}
    if "bf16" not in training and "fp16" not in training:
        chosen["bf16" if hardware.bf16 else "fp16"] = True
    capability = hardware.compute_capability or (0, 0)
    if "tf32" not in training and capability >= (8, 0):
        chosen["tf32"] = True
    return chosen


def training_arguments(
    spec: SweepSpec, output_dir: Path, hardware: Hardware, progress: bool
) -> dict[str, Any]:
    user = {k: v for k, v in spec.training.items() if k not in EXTRA_TRAINING_KEYS}
    schedule = spec.eval_strategy  # "epoch" or "steps": when to evaluate, log and save
    args: dict[str, Any] = {
        "eval_strategy": schedule,
        "logging_strategy": schedule,  # one training-loss figure per evaluation row
        "seed": spec.seed,
        "dataloader_pin_memory": hardware.cuda,
        **user,
        **precision_settings(user, hardware),
        "output_dir": str(output_dir),
        "save_strategy": schedule,
        # the best checkpoint and the latest, with optimizer, scheduler and RNG state, so
        # an interrupted try can be continued (workers.continuation); a finished trial
        # keeps only its best model (workers.trial._keep_only_best)
        "save_total_limit": 1,
        "save_only_model": False,
        "load_best_model_at_end": True,
        "metric_for_best_model": spec.objective.metric,
        "greater_is_better": spec.objective.maximize,
        "report_to": "none",
        "logging_nan_inf_filter": False,
        "disable_tqdm": not progress,
    }
    if schedule == "steps":
        args.setdefault("eval_steps", 500)
        args["save_steps"] = args["eval_steps"]
        args["logging_steps"] = args["eval_steps"]
    return args
