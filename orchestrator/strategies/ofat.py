"""OFAT screening: one factor at a time from the baseline, and the ranking it concludes.

Every configuration runs `repeats` times with consecutive seeds, so the ranking can tell
an effect from seed noise: an impact within the baseline's spread is flagged as noise and
ranked last. Without repeats the same holds for evaluation noise: a move whose difference
from the baseline lies inside the two runs' evaluation-set intervals (Wilson, bootstrap:
sweepctl.stats, carried as NOISE_ATTR) is not distinguishable either. When no move of any
parameter exceeds the noise the report says so (`no_signal`) instead of ranking ties, and
a `top: k` taken from it is an arbitrary pick that the later stage must not present as one.
Its trials are never pruned, and a point pruned elsewhere never answers one of its points:
a screening value needs the full-length score to be compared fairly.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from typing import Any, ClassVar

import optuna

from sweepctl.orchestrator.outcomes import NOISE_ATTR
from sweepctl.orchestrator.proposals import Proposal
from sweepctl.orchestrator.search import CONFIG_ATTR, stage_trials
from sweepctl.orchestrator.strategies.base import Conclusion, FixedPlan, StageContext
from sweepctl.spec.models import SweepSpec
from sweepctl.spec.stages import OfatStage, StageSpecBase


class OfatStrategy(FixedPlan):
    name: ClassVar[str] = "ofat"
    spec_model: ClassVar[type[StageSpecBase]] = OfatStage
    prunable: ClassVar[bool] = False
    reuses_pruned: ClassVar[bool] = False

    def planned_points(self, ctx: StageContext) -> list[Proposal]:
        repeats = ctx.stage_as(OfatStage).repeats
        return ofat_proposals(ctx.spec, repeats, ctx.names, ctx.base)

    def conclude(self, ctx: StageContext, study: optuna.Study) -> Conclusion:
        report = analyze_ofat(ctx.spec, study, ctx.stage.name, ctx.names)
        return Conclusion({"ofat": report.to_dict()}, report)

    def ranking_of(self, summary: dict[str, Any]) -> OfatReport | None:
        return OfatReport.from_dict(summary["ofat"]) if summary.get("ofat") else None


def ofat_proposals(
    spec: SweepSpec, repeats: int, names: list[str], base: dict[str, Any]
) -> list[Proposal]:
    """Baseline, then each parameter at each of its ofat values with the rest at baseline;
    every configuration `repeats` times with seeds seed, seed+1, ..."""
    configs = [Proposal(dict(base), "baseline")]
    for name in names:
        for value in spec.search_space[name].ofat:
            if value != base[name]:
                configs.append(Proposal({**base, name: value}, "ofat"))
    return [Proposal(p.params, p.role, repeat) for repeat in range(repeats) for p in configs]


@dataclass(frozen=True)
class ParameterImpact:
    name: str
    impact: float
    best_value: Any
    # value, mean, std, delta, n, and `noise`: the evaluation noise of that difference
    effects: list[dict[str, Any]] = field(default_factory=list)
    noise: bool = False


@dataclass(frozen=True)
class OfatReport:
    baseline_mean: float | None
    baseline_std: float | None
    baseline_n: int
    ranking: list[ParameterImpact]

    @property
    def no_signal(self) -> bool:
        """Every parameter's largest move is inside the noise: the ranking is of ties."""
        return bool(self.ranking) and all(p.noise for p in self.ranking)

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
            "no_signal": self.no_signal,
        }


def analyze_ofat(spec: SweepSpec, study: optuna.Study, stage: str, names: list[str]) -> OfatReport:
    """Impact of a parameter = the largest |mean objective at a value - baseline mean|.
    With repeats, an impact within the baseline's seed spread (its std) is noise."""
    complete = [
        t
        for t in stage_trials(study, stage)
        if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None
    ]
    base = [t for t in complete if _role(t) == "baseline"]
    base_values = [float(t.value or 0.0) for t in base]  # complete: every value is set
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
    by_value: dict[Any, list[optuna.trial.FrozenTrial]] = {}
    for trial in complete:
        if _role(trial) == "ofat" and trial.params.get(name) != base_value:
            by_value.setdefault(trial.params[name], []).append(trial)
    base_noise = _evaluation_noise(base)
    effects = [
        _effect(value, trials, base_mean, base_noise)
        for value, trials in sorted(by_value.items(), key=lambda kv: str(kv[0]))
    ]
    if not effects:
        return ParameterImpact(name, 0.0, base_value)
    impact = max(abs(e["delta"]) for e in effects)
    sign = 1.0 if spec.objective.maximize else -1.0
    best = max(effects, key=lambda e: sign * e["mean"])
    best_value = best["value"] if sign * best["delta"] > 0 else base_value
    within_seed_spread = base_std is not None and impact <= base_std
    within_evaluation_noise = all(
        e["noise"] is not None and abs(e["delta"]) <= e["noise"] for e in effects
    )
    noise = within_seed_spread or within_evaluation_noise
    return ParameterImpact(name, impact, best_value, effects, noise)


def _effect(
    value: Any,
    trials: list[optuna.trial.FrozenTrial],
    base_mean: float,
    base_noise: float | None,
) -> dict[str, Any]:
    scores = [float(t.value or 0.0) for t in trials]
    mean = statistics.fmean(scores)
    std = statistics.stdev(scores) if len(scores) > 1 else None
    own = _evaluation_noise(trials)
    # two independent evaluation intervals: the difference's half-width adds in quadrature
    noise = None if own is None or base_noise is None else (own**2 + base_noise**2) ** 0.5
    return {
        "value": value,
        "mean": mean,
        "std": std,
        "delta": mean - base_mean,
        "n": len(scores),
        "noise": noise,
    }


def _evaluation_noise(trials: list[optuna.trial.FrozenTrial]) -> float | None:
    """The half-width of the mean's evaluation interval, if every run carries one."""
    found = [t.user_attrs.get(NOISE_ATTR) for t in trials]
    widths = [float(w) for w in found if isinstance(w, (int, float))]
    if not widths or len(widths) < len(found):
        return None
    return statistics.fmean(widths) / len(widths) ** 0.5
