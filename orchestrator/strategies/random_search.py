"""Random search: independent uniform picks, the baseline every other plan must beat."""

from __future__ import annotations

from typing import ClassVar

import optuna

from sweepctl.orchestrator.strategies.base import SampledPlan, StageContext, pin_unsearched
from sweepctl.spec.stages import RandomStage, StageSpecBase


class RandomStrategy(SampledPlan):
    name: ClassVar[str] = "random"
    spec_model: ClassVar[type[StageSpecBase]] = RandomStage

    def sampler(self, ctx: StageContext) -> optuna.samplers.BaseSampler | None:
        return pin_unsearched(optuna.samplers.RandomSampler(seed=ctx.seed), ctx.fixed)
