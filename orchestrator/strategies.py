"""What each stage proposes, and what OFAT screening concludes.

Fixed strategies (OFAT, grid) are lists of configurations, enqueued into the study one by
one, so every point runs exactly once however many workers there are, and a resumed sweep
skips the ones already finished. Sampled strategies (random, bayes) are Optuna samplers;
parameters a stage does not search are pinned with Optuna's PartialFixedSampler at the
best values seen so far.
"""

from __future__ import annotations

import json
import statistics
import warnings
from dataclasses import dataclass, field
from typing import Any

import optuna

from sweepctl.orchestrator.search import CONFIG_ATTR, REPEAT_ATTR, finished_ok, stage_trials
from sweepctl.spec.models import SweepSpec
from sweepctl.spec.plan import StageSpec, TopParameters

TPE_STARTUP_TRIALS = 5


@dataclass(frozen=True)
class Proposal:
    params: dict[str, Any]
    role: str  # baseline | ofat | grid | sampled (a retry of a sampler's pick)
    repeat: int = 0
    attempt: int = 1  # which try of this point (orchestrator.retries)
    retry_of: int | None = None  # the Optuna number of the try this one repeats

    @property
    def key(self) -> str:
        return json.dumps([self.role, self.params, self.repeat], sort_keys=True, default=str)


def ofat_proposals(
    spec: SweepSpec, stage: StageSpec, names: list[str], base: dict[str, Any]
) -> list[Proposal]:
    """Baseline, then each parameter at each of its ofat values with the rest at baseline;
    every configuration `repeats` times with seeds seed, seed+1, ..."""
    configs = [Proposal(dict(base), "baseline")]
    for name in names:
        for value in spec.search_space[name].ofat:
            if value != base[name]:
                configs.append(Proposal({**base, name: value}, "ofat"))
    return [Proposal(p.params, p.role, repeat) for repeat in range(stage.repeats) for p in configs]


def grid_proposals(
    spec: SweepSpec, stage: StageSpec, names: list[str], fixed: dict[str, Any]
) -> list[Proposal]:
    """Every combination once. A parameter without explicit values uses its baseline plus
    its ofat values; categorical ones default to all their choices."""
    axes: list[tuple[str, list[Any]]] = []
    for name in names:
        explicit = (stage.values or {}).get(name)
        param = spec.search_space[name]
        if explicit is not None:
            axes.append((name, list(explicit)))
        elif param.type == "categorical":
            axes.append((name, list(param.choices)))
        else:
            axes.append((name, sorted({fixed[name], *param.ofat})))
    points: list[dict[str, Any]] = [dict(fixed)]
    for name, values in axes:
        points = [{**point, name: value} for point in points for value in values]
    return [Proposal(point, "grid") for point in points]


def remaining(proposals: list[Proposal], study: optuna.Study, stage: str) -> list[Proposal]:
    done = {t.user_attrs.get(CONFIG_ATTR) for t in stage_trials(study, stage) if finished_ok(t)}
    return [p for p in proposals if p.key not in done]


def make_sampler(stage: StageSpec, fixed: dict[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    seed = stage.seed if stage.seed is not None else seed
    base: optuna.samplers.BaseSampler
    if stage.strategy == "random":
        base = optuna.samplers.RandomSampler(seed=seed)
    elif stage.sampler == "gp":
        base = optuna.samplers.GPSampler(seed=seed, n_startup_trials=TPE_STARTUP_TRIALS)
    else:
        base = optuna.samplers.TPESampler(seed=seed, n_startup_trials=TPE_STARTUP_TRIALS)
    if stage.strategy == "bayes" and not stage.warm_start:
        from sweepctl.orchestrator.scoped_sampler import StageScopedSampler

        base = StageScopedSampler(base, stage.name)
    if not fixed:
        return base
    with warnings.catch_warnings():  # "experimental" since Optuna 2.4, and stable in use
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.PartialFixedSampler(fixed, base)


@dataclass(frozen=True)
class ParameterImpact:
    name: str
    impact: float
    best_value: Any
    effects: list[dict[str, Any]] = field(default_factory=list)  # value, mean, std, delta, n
    noise: bool = False


@dataclass(frozen=True)
class OfatReport:
    baseline_mean: float | None
    baseline_std: float | None
    baseline_n: int
    ranking: list[ParameterImpact]

    def top(self, k: int) -> list[str]:
        """Signal first, by impact; parameters flagged as noise only fill up what is left."""
        signal = [p.name for p in self.ranking if not p.noise]
        noise = [p.name for p in self.ranking if p.noise]
        return (signal + noise)[:k]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OfatReport:
        """The report a completed OFAT stage stored in its summary (`to_dict`)."""
        base = data.get("baseline") or {}
        ranking = [ParameterImpact(**p) for p in data.get("ranking") or []]
        return cls(base.get("mean"), base.get("std"), int(base.get("n") or 0), ranking)

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline": {
                "mean": self.baseline_mean,
                "std": self.baseline_std,
                "n": self.baseline_n,
            },
            "ranking": [p.__dict__ for p in self.ranking],
        }


def analyze_ofat(spec: SweepSpec, study: optuna.Study, stage: str, names: list[str]) -> OfatReport:
    """Impact of a parameter = the largest |mean objective at a value - baseline mean|.
    With repeats, an impact within the baseline's seed spread (its std) is noise."""
    complete = [
        t for t in stage_trials(study, stage) if t.state == optuna.trial.TrialState.COMPLETE
    ]
    base = [t for t in complete if _role(t) == "baseline"]
    base_values = [float(t.value) for t in base]
    base_mean = statistics.fmean(base_values) if base_values else None
    base_std = statistics.stdev(base_values) if len(base_values) > 1 else None
    impacts = [_impact(spec, name, complete, base, base_mean, base_std) for name in names]
    ranking = sorted(impacts, key=lambda p: (p.noise, -p.impact))
    return OfatReport(base_mean, base_std, len(base_values), ranking)


def _role(trial: optuna.trial.FrozenTrial) -> str:
    key = trial.user_attrs.get(CONFIG_ATTR)
    return json.loads(key)[0] if key else ""


def _impact(
    spec: SweepSpec,
    name: str,
    complete: list[optuna.trial.FrozenTrial],
    base: list[optuna.trial.FrozenTrial],
    base_mean: float | None,
    base_std: float | None,
) -> ParameterImpact:
    if base_mean is None or not base:
        return ParameterImpact(name, 0.0, None)
    base_value = base[0].params.get(name)
    by_value: dict[Any, list[float]] = {}
    for trial in complete:
        if _role(trial) == "ofat" and trial.params.get(name) != base_value:
            by_value.setdefault(trial.params[name], []).append(float(trial.value))
    effects = []
    for value, scores in sorted(by_value.items(), key=lambda kv: str(kv[0])):
        mean = statistics.fmean(scores)
        std = statistics.stdev(scores) if len(scores) > 1 else None
        effects.append(
            {"value": value, "mean": mean, "std": std, "delta": mean - base_mean, "n": len(scores)}
        )
    if not effects:
        return ParameterImpact(name, 0.0, base_value)
    impact = max(abs(e["delta"]) for e in effects)
    sign = 1.0 if spec.objective.maximize else -1.0
    best = max(effects, key=lambda e: sign * e["mean"])
    best_value = best["value"] if sign * best["delta"] > 0 else base_value
    noise = base_std is not None and impact <= base_std
    return ParameterImpact(name, impact, best_value, effects, noise)


def stage_parameter_names(
    stage: StageSpec, spec: SweepSpec, reports: dict[str, OfatReport]
) -> list[str]:
    if stage.parameters == "all":
        return list(spec.search_space)
    if isinstance(stage.parameters, TopParameters):
        return reports[stage.parameters.from_stage].top(stage.parameters.top)
    return list(stage.parameters)


__all__ = [
    "REPEAT_ATTR",
    "OfatReport",
    "Proposal",
    "analyze_ofat",
    "grid_proposals",
    "make_sampler",
    "ofat_proposals",
    "remaining",
    "stage_parameter_names",
]
