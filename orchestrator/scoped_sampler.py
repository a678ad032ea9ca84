"""A sampler that sees only its own stage's trials: a Bayesian stage without warm start.

All stages share one study, so by default an Optuna sampler learns from every earlier
trial. That is exactly `warm_start: true`. For `warm_start: false` this wrapper hands the
real sampler (TPE, GP) a view of the study whose trial lists hold only this stage's
trials; the sampling itself stays Optuna's.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from sweepctl.orchestrator.search import STAGE_ATTR
from sweepctl.storage.optuna_adapter import cached_trials


class _StageView:
    """Duck-typed Study whose trial listings are filtered to one stage."""

    def __init__(self, study: optuna.Study, stage: str) -> None:
        self._study = study
        self._stage = stage

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def _keep(self, trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
        return [t for t in trials if t.user_attrs.get(STAGE_ATTR) == self._stage]

    def get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        return self._keep(self._study.get_trials(deepcopy=deepcopy, states=states))

    def _get_trials(
        self,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
        use_cache: bool = False,
    ) -> list[FrozenTrial]:
        return self._keep(cached_trials(self._study, deepcopy, states, use_cache))

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()


class StageScopedSampler(BaseSampler):
    def __init__(self, base: BaseSampler, stage: str) -> None:
        self.base = base
        self.stage = stage

    def _view(self, study: optuna.Study) -> Any:
        return _StageView(study, self.stage)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self.base.infer_relative_search_space(self._view(study), trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self.base.sample_relative(self._view(study), trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self.base.sample_independent(
            self._view(study), trial, param_name, param_distribution
        )

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.base.before_trial(self._view(study), trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.base.after_trial(self._view(study), trial, state, values)

    def reseed_rng(self) -> None:
        self.base.reseed_rng()
