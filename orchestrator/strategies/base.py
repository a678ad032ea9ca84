"""The protocol a stage strategy implements, and the context it is given.

A strategy answers five questions and nothing else; the stage runner (stage_runner.py)
owns the loop, retries, reuse, the store and the backend, so a new strategy cannot get
any of those wrong:

    planned_points   the fixed configurations it runs, each exactly once (OFAT, grid)
    plan_record      what of that plan to keep in the stage summary when the stage first
                     starts, so a resumed stage plans the same points (`ctx.record`)
    sampler          the Optuna sampler that proposes the next point, if it samples
    conclude         what its finished results mean: its entries in the stage summary
                     (shown by `status` and the dashboard), and a ranking later stages
                     may take their parameters from
    prunable / reuses_pruned
                     whether its trials may be pruned early, and whether a point pruned
                     in an earlier stage may answer one of its points
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

import optuna
from optuna.trial import FrozenTrial

from sweepctl.orchestrator.proposals import Proposal, Ranking, stage_parameter_names
from sweepctl.orchestrator.search import STAGE_ATTR
from sweepctl.spec.models import SweepSpec
from sweepctl.spec.stages import StageSpecBase

StageModel = TypeVar("StageModel", bound=StageSpecBase)


@dataclass(frozen=True)
class StageContext:
    """`names`: the parameters this stage searches; `base`: the spec's baseline values;
    `fixed`: the best values so far of the parameters it does not search; `history`: the
    sweep's finished (COMPLETE or PRUNED) trials when the stage starts, for a strategy
    whose plan depends on earlier results; `record`: this stage's stored summary, holding
    what `plan_record` kept when the stage first started (empty until then)."""

    spec: SweepSpec
    stage: StageSpecBase
    names: list[str]
    base: dict[str, Any]
    fixed: dict[str, Any] = field(default_factory=dict)
    history: tuple[FrozenTrial, ...] = ()
    record: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        spec: SweepSpec,
        stage: StageSpecBase,
        rankings: Mapping[str, Ranking],
        base: dict[str, Any],
        best: dict[str, Any] | None = None,
        history: Sequence[FrozenTrial] = (),
        record: Mapping[str, Any] | None = None,
    ) -> StageContext:
        names = stage_parameter_names(stage, spec, rankings)
        fixed = {k: v for k, v in (best or {}).items() if k not in names}
        return cls(spec, stage, names, base, fixed, tuple(history), dict(record or {}))

    def earlier_trials(self) -> list[FrozenTrial]:
        """`history` limited to the stages before this one in the spec."""
        names = [s.name for s in self.spec.stages]
        earlier = set(names[: names.index(self.stage.name)]) if self.stage.name in names else set()
        return [t for t in self.history if t.user_attrs.get(STAGE_ATTR) in earlier]

    @property
    def start(self) -> dict[str, Any]:
        """The baseline with the earlier stages' best values in place."""
        return {**self.base, **self.fixed}

    def stage_as(self, model: type[StageModel]) -> StageModel:
        """The stage as its strategy's own model (the registry pairs them)."""
        if not isinstance(self.stage, model):
            raise TypeError(f"stage {self.stage.name!r} is not a {model.__name__}")
        return self.stage

    @property
    def seed(self) -> int:
        return self.stage.seed if self.stage.seed is not None else self.spec.seed


@dataclass(frozen=True)
class Conclusion:
    summary: dict[str, Any] = field(default_factory=dict)  # merged into the stage summary
    ranking: Ranking | None = None  # what `{top: k, from: <this stage>}` reads


class StageStrategy(Protocol):
    name: ClassVar[str]
    spec_model: ClassVar[type[StageSpecBase]]
    prunable: ClassVar[bool]
    reuses_pruned: ClassVar[bool]

    def planned_points(self, ctx: StageContext) -> list[Proposal]: ...

    def plan_record(self, ctx: StageContext) -> dict[str, Any]: ...

    def sampler(self, ctx: StageContext) -> optuna.samplers.BaseSampler | None: ...

    def trial_budget(self, ctx: StageContext) -> int | None: ...

    def conclude(self, ctx: StageContext, study: optuna.Study) -> Conclusion: ...

    def ranking_of(self, summary: dict[str, Any]) -> Ranking | None: ...


class FixedPlan:
    """Defaults for a strategy that runs a fixed list of points and samples nothing."""

    prunable: ClassVar[bool] = True
    reuses_pruned: ClassVar[bool] = True

    def plan_record(self, ctx: StageContext) -> dict[str, Any]:
        return {}  # a plan that depends only on the spec is the same on every start

    def sampler(self, ctx: StageContext) -> optuna.samplers.BaseSampler | None:
        return None

    def trial_budget(self, ctx: StageContext) -> int | None:
        return None  # as many trainings as planned points

    def conclude(self, ctx: StageContext, study: optuna.Study) -> Conclusion:
        return Conclusion()

    def ranking_of(self, summary: dict[str, Any]) -> Ranking | None:
        return None


class SampledPlan(FixedPlan):
    """Defaults for a strategy whose points an Optuna sampler picks, `n_trials` of them."""

    def planned_points(self, ctx: StageContext) -> list[Proposal]:
        return []

    def trial_budget(self, ctx: StageContext) -> int | None:
        return int(getattr(ctx.stage, "n_trials", None) or 0)


def pin_unsearched(
    sampler: optuna.samplers.BaseSampler, fixed: dict[str, Any]
) -> optuna.samplers.BaseSampler:
    """Parameters the stage does not search stay at the best values seen so far."""
    if not fixed:
        return sampler
    with warnings.catch_warnings():  # "experimental" since Optuna 2.4, and stable in use
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.PartialFixedSampler(fixed, sampler)


def planned_count(strategy: StageStrategy, ctx: StageContext) -> int:
    """Trials a stage will run when nothing fails: its budget, or its planned points."""
    budget = strategy.trial_budget(ctx)
    return budget if budget is not None else len(strategy.planned_points(ctx))
