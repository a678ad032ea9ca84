"""The one door to Optuna: its states, and every use of its internals.

Optuna's public API names trials by number and hides the storage; a few things sweepctl
needs are only reachable behind that (study._storage, study._study_id,
trial._trial_id, study._get_trials). Each such use is here, with why, so an Optuna
upgrade that moves one breaks this file and nothing else. The study lives in the same SQL
database as the store, which is why this door is in the storage layer: workers (pruning)
and the orchestrator (tell, reuse, resume) both pass through it.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial
from optuna.trial import TrialState as OptunaState

from sweepctl.storage.states import TrialState

_TO_OPTUNA = {
    TrialState.PENDING: OptunaState.WAITING,
    TrialState.RUNNING: OptunaState.RUNNING,
    TrialState.COMPLETED: OptunaState.COMPLETE,
    TrialState.PRUNED: OptunaState.PRUNED,
    TrialState.FAILED: OptunaState.FAIL,
    TrialState.CANCELLED: OptunaState.FAIL,  # Optuna has no CANCELLED: a user attr says so
}


def optuna_state(state: TrialState) -> OptunaState:
    """The one mapping from sweepctl's trial states to Optuna's."""
    return _TO_OPTUNA[TrialState(state)]


def _trial_id(study: optuna.Study, number: int) -> int:
    # Internal: storage calls take the storage's trial id, the public API only a number.
    return int(study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number))


def frozen_trial(study: optuna.Study, number: int) -> FrozenTrial:
    """One trial by number. Internal: `study.trials[number]` would copy every trial of a
    long sweep to read one."""
    return study._storage.get_trial(_trial_id(study, number))


def set_attr_unless_finished(study: optuna.Study, number: int, key: str, value: Any) -> None:
    """Internal: `Trial.set_user_attr` needs a live Trial, which the orchestrator does not
    hold for a trial a worker ran; a finished trial's attrs are frozen, so it is skipped."""
    storage = study._storage
    trial_id = _trial_id(study, number)
    if not storage.get_trial(trial_id).state.is_finished():
        storage.set_trial_user_attr(trial_id, key, value)


def discard_waiting(study: optuna.Study, trial: FrozenTrial) -> None:
    """An enqueued trial nobody asked for (the orchestrator stopped in between) becomes
    FAIL. Internal: `study.tell` refuses a WAITING trial, and `ask` would hand it to the
    next stage with the wrong stage attrs."""
    study._storage.set_trial_state_values(trial._trial_id, OptunaState.FAIL)


def live_trial(study: optuna.Study, number: int) -> optuna.Trial:
    """A Trial handle for a trial the orchestrator asked, from inside the worker that runs
    it, so the worker can `report` and `should_prune`. Internal: optuna.Trial's
    constructor takes the storage id (it is what `study.ask` itself does)."""
    return optuna.Trial(study, _trial_id(study, number))


def cached_trials(
    study: optuna.Study,
    deepcopy: bool,
    states: Container[OptunaState] | None,
    use_cache: bool,
) -> Sequence[FrozenTrial]:
    """Internal: samplers read trials through `study._get_trials` (with its cache); a study
    view that filters them (orchestrator.scoped_sampler) has to answer that call too."""
    return study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)
