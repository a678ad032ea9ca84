"""What the CLI prints: the per-epoch table users used to copy from Trainer by hand, the
resources, and a stored trial read back. Rendering only; no I/O besides the console."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table

EPOCH_COLUMNS = (
    ("Epoch", "epoch"),
    ("Training Loss", "training_loss"),
    ("Validation Loss", "eval_loss"),
    ("Accuracy", "accuracy"),
    ("F1", "f1"),
    ("Precision", "precision"),
    ("Recall", "recall"),
)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.1f}"
    return str(value)


def epoch_table(rows: Iterable[dict[str, Any]], best_step: int | None = None) -> Table:
    table = Table(title="Evaluations (best marked *)", title_justify="left")
    for title, _ in EPOCH_COLUMNS:
        table.add_column(title, justify="right")
    for row in rows:
        cells = [_cell(row.get(key)) for _, key in EPOCH_COLUMNS]
        cells[0] = f"{row.get('epoch', 0):g}"
        if best_step is not None and row.get("step") == best_step:
            cells[0] = f"*{cells[0]}"
        table.add_row(*cells)
    return table


def resources_lines(resources: dict[str, Any]) -> list[str]:
    def size(n: int | None) -> str:
        return "-" if n is None else f"{n / 2**20:,.1f} MiB"

    speed = resources.get("train_samples_per_second")
    return [
        f"wall time        {resources.get('wall_time_s', 0):.1f} s on {resources.get('device')}",
        f"train samples/s  {speed:.1f}" if speed is not None else "train samples/s  -",
        f"parameters       {resources.get('parameters', 0):,}",
        f"peak GPU memory  {size(resources.get('peak_gpu_memory_bytes'))}",
        f"checkpoint size  {size(resources.get('checkpoint_bytes'))}",
    ]


def provenance_line(record: dict[str, Any]) -> str:
    """Which try this was, where it ran and why it failed: what a user asks first about a
    trial that a fault touched."""
    parts = []
    if record.get("attempt", 1) > 1 or record.get("retry_of") is not None:
        parts.append(f"attempt {record.get('attempt', 1)} (retries trial {record.get('retry_of')})")
    if record.get("failure_kind"):
        parts.append(f"failed: {record['failure_kind']}")
    if record.get("worker"):
        parts.append(f"ran on {record['worker']}")
    return "  ".join(parts)


def interval_text(interval: dict[str, Any] | None) -> str:
    """`  (95% interval 0.638-0.727, wilson, 408 rows)`, or nothing for a trial without one
    (loss objectives, replays, trials stored before intervals existed)."""
    if not interval:
        return ""
    return (
        f"  ({interval['confidence']:.0%} interval {interval['low']:.4f}-{interval['high']:.4f}, "
        f"{interval['method']}, {interval['n']} rows)"
    )


def print_trial(console: Console, record: dict[str, Any]) -> None:
    """Prints a stored trial (TrialRecord.to_dict()) the same way `trial` does."""
    state = record["state"]
    console.print(
        f"[bold]trial {record['id']}[/bold]  sweep {record['sweep_name']}  "
        f"#{record['number']}  [bold]{state}[/bold]"
    )
    if line := provenance_line(record):
        console.print(line)
    if record.get("params"):
        console.print("params: " + ", ".join(f"{k}={v}" for k, v in record["params"].items()))
    metrics = record.get("metrics") or {}
    console.print(epoch_table(record.get("evaluations", []), metrics.get("step")))
    if record.get("objective") is not None:
        objective = (record.get("config") or {}).get("objective", {}).get("metric", "objective")
        console.print(
            f"best {objective}: {record['objective']:.4f} at epoch {metrics.get('epoch')}"
            + interval_text(metrics.get("objective_interval"))
        )
    if metrics.get("degenerate"):
        console.print(f"[yellow]degenerate: {metrics['degenerate']}[/yellow]")
    if "per_class_recall" in metrics:
        recalls = ", ".join(f"{k}={v:.3f}" for k, v in metrics["per_class_recall"].items())
        console.print(f"per-class recall: {recalls}")
        console.print(
            f"confusion matrix (rows = true {metrics.get('labels')}): {metrics['confusion_matrix']}"
        )
    if "test" in metrics:
        test = metrics["test"]
        console.print(
            "test split: "
            + ", ".join(f"{k}={test[k]:.4f}" for k in ("accuracy", "f1") if k in test)
        )
    for line in resources_lines(record.get("resources") or {}):
        console.print(line)
    for artifact in record.get("artifacts", []):
        console.print(f"{artifact['kind']:<16} {artifact['uri']}")
    if record.get("error"):
        console.print(f"[red]error: {record['error']}[/red]")
