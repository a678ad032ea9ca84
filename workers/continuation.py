"""Continue a try from the checkpoint an earlier, interrupted try of the same configuration
left behind, instead of training from zero.

While a trial runs, its run directory holds the latest per-evaluation checkpoint with
optimizer, scheduler and RNG state (workers.arguments: save_only_model is off) next to
the best one. A try that was killed (its worker lost, a timeout, a crashed orchestrator)
leaves them; its retry, a new row, finds the newest complete one here and hands it to
Trainer's `resume_from_checkpoint`. Trainer restores the optimizer, the schedule, the RNG
and its callbacks' state (early stopping's patience counter), so on a CPU with a fixed
seed the continued trial ends with the objective an uninterrupted run has.

The earlier try's evaluations up to that checkpoint are copied onto the new row first,
each once, so its curve is whole and nothing is stored twice; the evaluations after the
checkpoint are the ones the new try makes itself. Why an out-of-memory retry never
continues: it runs with another batch (spec.batch), and a checkpoint's position in the
data is counted in batches of the old size.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweepctl.storage import EvaluationRecord, Store
from sweepctl.workers.rows import EvaluationRow

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
COMPLETE_MARKER = "trainer_state.json"  # written last by Trainer._save_checkpoint


@dataclass(frozen=True)
class Continuation:
    trial_id: int  # the earlier try whose checkpoint this one continues
    checkpoint: Path
    step: int
    rows: list[EvaluationRow]  # its evaluations up to and including `step`

    def record(self) -> dict[str, Any]:
        """What the new row's config says about where it started."""
        epoch = self.rows[-1].epoch if self.rows else 0.0
        return {"trial_id": self.trial_id, "step": self.step, "epoch": epoch}


def run_dir(home: Path, sweep: str, trial_id: int) -> Path:
    """Where a trial's checkpoints live: $SWEEPCTL_HOME/runs/<sweep>/trial-<id>."""
    return home / "runs" / sweep / f"trial-{trial_id}"


def latest_checkpoint(directory: Path) -> tuple[Path, int] | None:
    """The newest complete `checkpoint-N` under `directory`/checkpoints, with its step."""
    found = []
    for path in (directory / "checkpoints").glob("checkpoint-*"):
        match = CHECKPOINT.match(path.name)
        if match and (path / COMPLETE_MARKER).is_file():
            found.append((int(match.group(1)), path))
    if not found:
        return None
    step, path = max(found)
    return path, step


def find_continuation(
    store: Store, home: Path, sweep: str, earlier: tuple[int, ...]
) -> Continuation | None:
    """The newest checkpoint of the earlier tries (newest try first), or None."""
    for trial_id in earlier:
        found = latest_checkpoint(run_dir(home, sweep, trial_id))
        if found is None:
            continue
        path, step = found
        evaluations = store.get_trial(trial_id).evaluations
        rows = [row_of(e) for e in sorted(evaluations, key=lambda e: e.step) if e.step <= step]
        return Continuation(trial_id, path, step, rows)
    return None


def discard_checkpoints(home: Path, sweep: str, trial_ids: tuple[int, ...]) -> None:
    """Once a continued try has finished, the interrupted tries' checkpoints go: a
    finished configuration keeps one checkpoint, its own best."""
    for trial_id in trial_ids:
        shutil.rmtree(run_dir(home, sweep, trial_id) / "checkpoints", ignore_errors=True)


def row_of(record: EvaluationRecord) -> EvaluationRow:
    """A stored evaluation as the recorder made it: scalars are the metrics, the rest
    (per-class recall, support, confusion matrix, labels) the details."""
    scalars = {
        k: float(v)
        for k, v in record.metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    details = {k: v for k, v in record.metrics.items() if k not in scalars}
    return EvaluationRow(
        epoch=record.epoch,
        step=record.step,
        training_loss=record.training_loss,
        eval_loss=record.eval_loss,
        learning_rate=record.learning_rate,
        grad_norm=record.grad_norm,
        metrics=scalars,
        details=details,
    )
