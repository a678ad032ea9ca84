"""Weights & Biases: one run per trial, grouped by sweep.

`mode: auto` goes online only when WANDB_API_KEY is set, so a laptop without an account
still gets offline runs that `wandb sync` uploads later. The key itself is read by wandb
from the environment and never passes through sweepctl's config, store or logs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from sweepctl.spec.models import WandbSpec
from sweepctl.workers.rows import EvaluationRow

Mode = Literal["online", "offline", "disabled"]


def resolve_mode(spec: WandbSpec, environ: dict[str, str] | os._Environ[str] = os.environ) -> Mode:
    if spec.mode != "auto":
        return spec.mode
    if environ.get("WANDB_MODE") in ("offline", "disabled", "online"):
        return environ["WANDB_MODE"]  # type: ignore[return-value]
    return "online" if environ.get("WANDB_API_KEY") else "offline"


class WandbTracker:
    """A started W&B run, or nothing at all when disabled (wandb is then never imported)."""

    def __init__(
        self, spec: WandbSpec, sweep: str, run_name: str, config: dict[str, Any], home: Path
    ) -> None:
        self.mode = resolve_mode(spec)
        self._run: Any = None
        self._finished = False
        if self.mode == "disabled":
            return
        import wandb

        home.mkdir(parents=True, exist_ok=True)
        self._run = wandb.init(
            project=spec.project,
            entity=spec.entity,
            group=sweep,
            name=run_name,
            job_type="trial",
            tags=list(spec.tags),
            config=config,
            mode=self.mode,
            dir=str(home),
            reinit="create_new",
            settings=wandb.Settings(silent=True, console="off", x_disable_stats=True),
        )

    @property
    def run_path(self) -> str | None:
        """Where the run lives: entity/project/run-id online, the local run folder offline."""
        if self._run is None:
            return None
        if self.mode == "offline":
            return str(Path(self._run.dir).parent)
        return "/".join(self._run.path) if isinstance(self._run.path, list) else str(self._run.path)

    def log_evaluation(self, row: EvaluationRow) -> None:
        if self._run is None:
            return
        values: dict[str, float] = {f"eval/{k}": v for k, v in row.metrics.items()}
        if row.eval_loss is not None:
            values["eval/loss"] = row.eval_loss
        for key in ("training_loss", "learning_rate", "grad_norm"):
            value = getattr(row, key)
            if value is not None:
                values[f"train/{key.removeprefix('training_')}"] = value
        values["epoch"] = row.epoch
        self._run.log(values, step=row.step)

    def finish(self, summary: dict[str, Any], failed: bool) -> None:
        if self._run is None or self._finished:
            return
        for key, value in summary.items():
            self._run.summary[key] = value
        self._run.finish(exit_code=1 if failed else 0)
        self._finished = True
