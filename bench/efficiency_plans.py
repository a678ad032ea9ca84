"""The plans, search space and pruning settings that bench/strategy_efficiency.py compares.

Kept apart from the runner so the settings read as one page: what each plan does, the
NMTLC space and the spec's baseline (OFAT's reference point).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

DATASET = "material-sw-en"
SPACE: dict[str, list[Any]] = {  # every NMTLC scratch-run hyperparameter of this corpus
    "bpe": [1, 2, 4, 8, 16, 32],
    "num_layers": [1, 2, 4, 6],
    "model_size": [256, 512, 1024],
    "ff_num_hidden": [1024, 2048],
    "initial_lr": [0.0003, 0.0006, 0.001],
}
BASELINE = {  # the spec's model_args, as in the example spec: OFAT's reference point
    "bpe": 8,
    "num_layers": 2,
    "model_size": 512,
    "ff_num_hidden": 1024,
    "initial_lr": 0.0006,
}
PRUNERS = ("none", "median", "asha", "hyperband")  # sweepctl's pruning.algorithm
# picked on dev seeds 100-104 (docs/benchmarks.md): ASHA and Hyperband alone prune the
# slow-starting optimum; patience keeps improving trials; min_trials stops a late step from
# being judged against one or two survivors
CHOSEN_PRUNING = "median:patience=2:min_trials=3"
PLAN_NAMES = ("grid", "random", "tpe", "gp", "staged")


@dataclass(frozen=True)
class Plan:
    """A named list of stages; `{seed}` in a stage's seed is the run's seed."""

    name: str
    stages: tuple[dict[str, Any], ...]
    shuffle_grid: bool = False  # the full grid runs in a seeded random order


# --- plans ------------------------------------------------------------------------------------


def sampled(name: str, strategy: str, n_trials: int, sampler: str = "tpe") -> Plan:
    stage: dict[str, Any] = {"name": name, "strategy": strategy, "n_trials": n_trials}
    if strategy == "bayes":
        stage["sampler"] = sampler
    return Plan(name, ({**stage, "seed": "{seed}"},))


def staged(grid_top: int, bayes_top: int, n_trials: int) -> Plan:
    """OFAT over every value of every parameter -> grid over the top `grid_top` (all their
    values, the rest at the best so far) -> TPE over the top `bayes_top`, warm-started."""
    name = f"staged g{grid_top} t{bayes_top}x{n_trials}"
    stages = (
        {"name": "screen", "strategy": "ofat"},
        {"name": "grid", "strategy": "grid", "parameters": {"top": grid_top, "from": "screen"}},
        {
            "name": "bayes",
            "strategy": "bayes",
            "parameters": {"top": bayes_top, "from": "screen"},
            "n_trials": n_trials,
            "warm_start": True,
            "seed": "{seed}",
        },
    )
    return Plan(name, stages)


GRID = Plan("grid", ({"name": "grid", "strategy": "grid"},), shuffle_grid=True)


def plans(args: argparse.Namespace) -> list[Plan]:
    every = {
        "grid": [GRID],
        "random": [sampled("random", "random", args.n_trials)],
        "tpe": [sampled("tpe", "bayes", args.n_trials)],
        "gp": [sampled("gp", "bayes", args.gp_trials, sampler="gp")],
        "staged": [staged(*setting) for setting in args.staged],
    }
    return [plan for name in args.plans for plan in every[name]]


def sweep_spec(plan: Plan, pruning: str, seed: int) -> Any:
    from sweepctl.spec.models import SweepSpec

    stages = [_seeded(stage, seed) for stage in plan.stages]
    return SweepSpec.model_validate(
        {
            "name": "efficiency",
            "model": "replay",
            "model_args": BASELINE,
            "dataset": {"path": "nmtlc", "name": DATASET, "text_fields": ["x"]},
            "objective": {"metric": "loss"},
            "tracking": {"wandb": {"mode": "disabled"}},
            "search_space": {
                name: {"type": "categorical", "choices": values, "ofat": values}
                for name, values in SPACE.items()
            },
            "stages": stages,
            "pruning": pruning_settings(pruning),
        }
    )


def _seeded(stage: dict[str, Any], seed: int) -> dict[str, Any]:
    return {**stage, "seed": seed} if stage.get("seed") == "{seed}" else dict(stage)


def pruning_settings(label: str) -> dict[str, Any]:
    """`asha`, or `asha:min_epochs=3:patience=2`: a pruning algorithm and spec keys to set
    (min_epochs 1 unless given). The label names the row in the benchmark's table."""
    algorithm, *pairs = label.split(":")
    if algorithm not in PRUNERS:
        raise ValueError(f"pruning {label!r}: the algorithm must be one of {PRUNERS}")
    settings: dict[str, Any] = {"algorithm": algorithm, "min_epochs": 1}
    for pair in pairs:
        key, _, value = pair.partition("=")
        settings[key] = int(value)
    return settings
