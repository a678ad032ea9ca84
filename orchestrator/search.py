"""The sweep's Optuna study: one per sweep, in the sweep's own SQL database.

Every trial of every stage is a trial of this study, so Optuna's samplers see the whole
history (that is what warm start means), Optuna's importance evaluators and dashboard work
on it as-is, and sweepctl's own rows point back to it by trial number.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.study import StudyDirection

from sweepctl.spec.models import SweepSpec
from sweepctl.storage import optuna_storage

STAGE_ATTR = "sweepctl_stage"
CONFIG_ATTR = "sweepctl_config"
REPEAT_ATTR = "sweepctl_repeat"


def open_study(spec: SweepSpec, db_url: str) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction = StudyDirection.MAXIMIZE if spec.objective.maximize else StudyDirection.MINIMIZE
    storage = optuna_storage(db_url)
    return optuna.create_study(
        study_name=spec.name, storage=storage, direction=direction, load_if_exists=True
    )


def distribution(param: Any) -> BaseDistribution:
    if param.type == "float":
        return FloatDistribution(param.low, param.high, log=param.log, step=param.step)
    if param.type == "int":
        step = 1 if param.log else param.step
        return IntDistribution(param.low, param.high, log=param.log, step=step)
    return CategoricalDistribution(list(param.choices))


def distributions(spec: SweepSpec) -> dict[str, BaseDistribution]:
    return {name: distribution(param) for name, param in spec.search_space.items()}


def stage_trials(study: optuna.Study, stage: str) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get(STAGE_ATTR) == stage]


def finished_ok(trial: optuna.trial.FrozenTrial) -> bool:
    return trial.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def best_params(study: optuna.Study, fallback: dict[str, Any]) -> dict[str, Any]:
    """The best completed trial's values, else the baseline: what unsearched parameters
    of a later stage are held at."""
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return dict(fallback)
    best = study.best_trial
    return {**fallback, **{k: v for k, v in best.params.items() if k in fallback}}
