"""Bayesian optimisation with Optuna's TPE or GP sampler.

Without `warm_start` the sampler sees only this stage's trials (StageScopedSampler): the
OFAT and grid points before it sit on a few axes and would drag its model towards them.
With `warm_start` it learns from every earlier trial, as users warm-start by hand.
"""

from __future__ import annotations

from typing import ClassVar

import optuna

from sweepctl.orchestrator.scoped_sampler import StageScopedSampler
from sweepctl.orchestrator.strategies.base import SampledPlan, StageContext, pin_unsearched
from sweepctl.spec.stages import BayesStage, StageSpecBase

STARTUP_TRIALS = 5  # random picks before the model is trusted (Optuna's TPE default: 10)


class BayesStrategy(SampledPlan):
    name: ClassVar[str] = "bayes"
    spec_model: ClassVar[type[StageSpecBase]] = BayesStage

    def sampler(self, ctx: StageContext) -> optuna.samplers.BaseSampler | None:
        stage = ctx.stage_as(BayesStage)
        base: optuna.samplers.BaseSampler
        if stage.sampler == "gp":
            base = optuna.samplers.GPSampler(seed=ctx.seed, n_startup_trials=STARTUP_TRIALS)
        else:
            base = optuna.samplers.TPESampler(seed=ctx.seed, n_startup_trials=STARTUP_TRIALS)
        if not stage.warm_start:
            base = StageScopedSampler(base, stage.name)
        return pin_unsearched(base, ctx.fixed)
