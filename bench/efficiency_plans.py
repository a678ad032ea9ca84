"""The plans, search space and pruning settings that bench/strategy_efficiency.py compares.

Kept apart from the runner so the settings read as one page: what each plan does, the
NMTLC space and the spec's baseline (OFAT's reference point).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

LR = [0.0003, 0.0006, 0.001]
SCRATCH_SMALL = {  # robust19 and TED: three BPE sizes, 2 or 4 layers
    "bpe": [10, 30, 50],
    "num_layers": [2, 4],
    "model_size": [256, 512, 1024],
    "ff_num_hidden": [1024, 2048],
    "initial_lr": LR,
}
SCRATCH_SMALL_BASE = {
    "bpe": 30,
    "num_layers": 2,
    "model_size": 512,
    "ff_num_hidden": 1024,
    "initial_lr": 0.0006,
}
LORA = {  # LoRA fine-tunes of six pretrained models: the model is one choice
    "base_model": [
        "bloomz-1024x24",
        "bloomz-2048x24",
        "bloomz-2560x30",
        "xglm-1024x24",
        "xglm-2048x24",
        "xglm-2048x48",
    ],
    "initial_lr": [2e-05, 0.0001, 0.0002],
    "batch_size": [16, 32, 64],
    "r": [2, 16, 64],
}
LORA_BASE = {"base_model": "bloomz-2048x24", "initial_lr": 0.0001, "batch_size": 32, "r": 16}


MATERIAL_BASE = {  # the example spec
    "bpe": 8,
    "num_layers": 2,
    "model_size": 512,
    "ff_num_hidden": 1024,
    "initial_lr": 0.0006,
}


@dataclass(frozen=True)
class Landscape:
    """One NMTLC corpus as a sweep: every hyperparameter it varies, and the spec's
    baseline (OFAT's reference point: the middle value of each axis)."""

    corpus: str
    space: dict[str, list[Any]]
    baseline: dict[str, Any]


LANDSCAPES: dict[str, Landscape] = {
    landscape.corpus: landscape
    for landscape in (
        Landscape(
            "material-sw-en",  # the example spec; 420 of 432 configurations trained
            {
                "bpe": [1, 2, 4, 8, 16, 32],
                "num_layers": [1, 2, 4, 6],
                "model_size": [256, 512, 1024],
                "ff_num_hidden": [1024, 2048],
                "initial_lr": LR,
            },
            MATERIAL_BASE,
        ),
        Landscape(
            "material-so-en",
            {
                "bpe": [1, 2, 4, 8, 16, 32],
                "num_layers": [1, 2, 4],
                "model_size": [256, 512, 1024],
                "ff_num_hidden": [1024, 2048],
                "initial_lr": LR,
            },
            MATERIAL_BASE,
        ),
        Landscape("robust19-en-ja", SCRATCH_SMALL, SCRATCH_SMALL_BASE),
        Landscape("robust19-ja-en", SCRATCH_SMALL, SCRATCH_SMALL_BASE),
        Landscape("ted-ru-en", SCRATCH_SMALL, SCRATCH_SMALL_BASE),
        Landscape(
            "ted-zh-en",  # one BPE size only
            {k: v for k, v in SCRATCH_SMALL.items() if k != "bpe"},
            {k: v for k, v in SCRATCH_SMALL_BASE.items() if k != "bpe"},
        ),
        Landscape("zh-en", LORA, LORA_BASE),
        Landscape("fr-en", LORA, LORA_BASE),
    )
}
DATASET = "material-sw-en"  # the default --corpus
PRUNERS = ("none", "median", "asha", "hyperband")  # sweepctl's pruning.algorithm
# picked on dev seeds 100-104 (docs/benchmarks.md): ASHA and Hyperband alone prune the
# slow-starting optimum; patience keeps improving trials; min_trials stops a late step from
# being judged against one or two survivors
CHOSEN_PRUNING = "median:patience=2:min_trials=3"
PLAN_NAMES = ("grid", "random", "tpe", "gp", "staged", "release", "focus")
DEFAULT_PLANS = ("grid", "tpe", "staged", "release")


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
    """The users' literal plan: OFAT over every value of every parameter -> grid over the
    top `grid_top` (all their values, the rest at the best so far) -> TPE over the top
    `bayes_top`, warm-started. The parameters outside the top stay pinned to the end."""
    name = f"staged g{grid_top} t{bayes_top}x{n_trials}"
    return Plan(name, (SCREEN, _grid_over(grid_top), _bayes(bayes_top, n_trials)))


def released(grid_top: int, n_trials: int) -> Plan:
    """OFAT -> grid over the top `grid_top` -> TPE over every parameter, warm-started from
    all of it: the screening decides where the grid looks, never what TPE may move."""
    name = f"release g{grid_top} tall" if grid_top else "release tall"
    grid = (_grid_over(grid_top),) if grid_top else ()
    return Plan(name, (SCREEN, *grid, _bayes(None, n_trials)))


def focused(grid_top: int, bayes_top: int, focus_trials: int, n_trials: int) -> Plan:
    """OFAT -> grid over the top `grid_top` -> TPE over the top `bayes_top` for
    `focus_trials` -> TPE over every parameter: the pinned ones released at the end."""
    name = f"focus g{grid_top} t{bayes_top}x{focus_trials} tall"
    stages = (SCREEN, _grid_over(grid_top), _bayes(bayes_top, focus_trials, "focus"))
    return Plan(name, (*stages, _bayes(None, n_trials, "release")))


SCREEN: dict[str, Any] = {"name": "screen", "strategy": "ofat"}


def _grid_over(top: int) -> dict[str, Any]:
    return {"name": "grid", "strategy": "grid", "parameters": {"top": top, "from": "screen"}}


def _bayes(top: int | None, n_trials: int, name: str = "bayes") -> dict[str, Any]:
    parameters: Any = {"top": top, "from": "screen"} if top else "all"
    return {
        "name": name,
        "strategy": "bayes",
        "parameters": parameters,
        "n_trials": n_trials,
        "warm_start": True,
        "seed": "{seed}",
    }


GRID = Plan("grid", ({"name": "grid", "strategy": "grid"},), shuffle_grid=True)


def plans(args: argparse.Namespace) -> list[Plan]:
    """Staged plans get the same budget as TPE: `--n-trials` trainings in all, the last
    stage's n_trials being an upper bound the benchmark's budget cap cuts short."""
    budget = args.n_trials
    every = {
        "grid": [GRID],
        "random": [sampled("random", "random", budget)],
        "tpe": [sampled("tpe", "bayes", budget)],
        "gp": [sampled("gp", "bayes", args.gp_trials, sampler="gp")],
        "staged": [staged(*setting) for setting in args.staged],
        "release": [released(top, budget) for top in args.release_grid_top],
        "focus": [focused(2, 3, args.focus_trials, budget)],
    }
    return [plan for name in args.plans for plan in every[name]]


def sweep_spec(plan: Plan, pruning: str, seed: int, corpus: str = DATASET) -> Any:
    from sweepctl.spec.models import SweepSpec

    landscape = LANDSCAPES[corpus]
    stages = [_seeded(stage, seed) for stage in plan.stages]
    return SweepSpec.model_validate(
        {
            "name": "efficiency",
            "model": "replay",
            "model_args": landscape.baseline,
            "dataset": {"path": "nmtlc", "name": corpus, "text_fields": ["x"]},
            "objective": {"metric": "loss"},
            "tracking": {"wandb": {"mode": "disabled"}},
            "search_space": {
                name: {"type": "categorical", "choices": values, "ofat": values}
                for name, values in landscape.space.items()
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
