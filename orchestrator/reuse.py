"""One sweep never trains the same configuration twice.

Why: fine-tuning with a fixed seed is deterministic, so a second run of a configuration
can only return the first run's result. Samplers over a finite (categorical) space
propose configurations again, and a grid stage often contains points an OFAT stage
already ran; on the NMTLC replay such repeats were 15-40% of a staged sweep's compute.

"The same configuration" is the same params dict (categorical floats compare exactly)
with the same seed offset (OFAT `repeats` are deliberately different seeds). When a
stage proposes one:

    finished earlier (COMPLETE; PRUNED too, except for OFAT, which needs full-budget runs)
        -> the new Optuna trial is told the earlier result at once: the value, or PRUNED
           with the earlier intermediate values (TPE ranks pruned trials by them). It gets
           the user attr `sweepctl_reused_from` = the earlier trial's number; no worker
           starts and no store row is written (store rows are trainings).
    in flight (launched by this stage, no result yet)
        -> the new trial waits for that result and is told the same (or FAIL if it failed).

A COMPLETE copy carries only its value, not the curve: MedianPruner reads the curves of
COMPLETE trials and would otherwise count one configuration twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweepctl.orchestrator.search import REPEAT_ATTR
from sweepctl.storage.optuna_adapter import frozen_trial

REUSED_ATTR = "sweepctl_reused_from"
ConfigKey = tuple[int, tuple[tuple[str, Any], ...]]


def config_key(params: dict[str, Any], repeat: int = 0) -> ConfigKey:
    return int(repeat), tuple(sorted(params.items()))


def trial_key(trial: FrozenTrial) -> ConfigKey:
    return config_key(trial.params, int(trial.user_attrs.get(REPEAT_ATTR) or 0))


def is_reused(trial: FrozenTrial) -> bool:
    return REUSED_ATTR in trial.user_attrs


@dataclass
class KnownConfigs:
    """Finished and in-flight configurations of a sweep, by config key."""

    study: optuna.Study
    finished: dict[ConfigKey, FrozenTrial] = field(default_factory=dict)
    in_flight: dict[ConfigKey, int] = field(default_factory=dict)
    waiting: dict[int, list[optuna.Trial]] = field(default_factory=dict)

    @classmethod
    def of(cls, study: optuna.Study) -> KnownConfigs:
        known = cls(study)
        states = (TrialState.COMPLETE, TrialState.PRUNED)
        for trial in study.get_trials(deepcopy=False, states=states):
            known._remember(trial)
        return known

    def _remember(self, trial: FrozenTrial) -> None:
        key = trial_key(trial)
        earlier = self.finished.get(key)
        # a COMPLETE result beats a PRUNED one: OFAT can reuse only full-budget runs
        if earlier is None or (
            earlier.state is TrialState.PRUNED and trial.state is TrialState.COMPLETE
        ):
            self.finished[key] = trial

    def source(self, key: ConfigKey, allow_pruned: bool) -> FrozenTrial | None:
        trial = self.finished.get(key)
        if trial is None or (trial.state is TrialState.PRUNED and not allow_pruned):
            return None
        return trial

    def launched(self, key: ConfigKey, number: int) -> None:
        self.in_flight[key] = number

    def wait_for(self, key: ConfigKey, trial: optuna.Trial) -> int:
        number = self.in_flight[key]
        trial.set_user_attr(REUSED_ATTR, number)
        self.waiting.setdefault(number, []).append(trial)
        return number

    def settled(self, number: int) -> list[int]:
        """Trial `number` was told its result: remember it and answer the trials waiting
        for it. Returns the numbers of the waiting trials."""
        key = next((k for k, n in self.in_flight.items() if n == number), None)
        if key is not None:
            del self.in_flight[key]
        trial = self.frozen(number)
        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
            self._remember(trial)
        waiters = self.waiting.pop(number, [])
        for waiter in waiters:
            if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
                copy_result(self.study, waiter, trial)
            else:
                self.study.tell(waiter, state=TrialState.FAIL)
        return [w.number for w in waiters]

    def abandon(self) -> list[int]:
        """The stage was cancelled: trials waiting for a result that will not come fail."""
        numbers = []
        for waiters in self.waiting.values():
            for waiter in waiters:
                self.study.tell(waiter, state=TrialState.FAIL, skip_if_finished=True)
                numbers.append(waiter.number)
        self.waiting.clear()
        return numbers

    def frozen(self, number: int) -> FrozenTrial:
        return frozen_trial(self.study, number)


def copy_result(study: optuna.Study, trial: optuna.Trial, source: FrozenTrial) -> None:
    """Tell `trial` what `source` ended with, and say where it came from."""
    trial.set_user_attr(REUSED_ATTR, source.number)
    if source.state is TrialState.PRUNED:
        for step, value in sorted(source.intermediate_values.items()):
            trial.report(value, step)
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, source.value)


def space_size(distributions: dict[str, Any]) -> int | None:
    """How many configurations a space holds; None when one parameter is continuous."""
    size = 1
    for dist in distributions.values():
        count = _choices(dist)
        if count is None:
            return None
        size *= count
    return size


def in_space(dist: Any, value: Any) -> bool:
    """Whether a value is one of the distribution's points (an OFAT value off a step grid,
    say, is not, and must not count towards exhausting the stage's space)."""
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False


def _choices(dist: Any) -> int | None:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if isinstance(dist, CategoricalDistribution):
        return len(dist.choices)
    if isinstance(dist, IntDistribution):
        return (dist.high - dist.low) // dist.step + 1
    if isinstance(dist, FloatDistribution) and dist.step is not None:
        return round((dist.high - dist.low) / dist.step) + 1
    return None
