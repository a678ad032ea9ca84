"""Parameter importance of a sweep, from Optuna's own evaluator on the sweep's study.

The study lives in the same database under the sweep's name, so Optuna's evaluator sees
exactly the trials Optuna was told about. Two costs are kept off the 2-second refresh:

- the result is cached per (database, study, number of finished sweepctl trials): until
  another trial finishes the answer cannot change, and counting finished trials is a read
  the page makes anyway;
- fANOVA fits a random forest, whose cost grows with the number of trials; above
  `TRIAL_CAP` completed trials it is fitted on an evenly spaced sample of them (in trial
  order, so every stage is represented). bench/dashboard_scale.py measures it at 10,000.
"""

from __future__ import annotations

import threading
import warnings
from functools import lru_cache
from typing import Any

import optuna

TRIAL_CAP = 1000
_CACHE_SIZE = 64
_cache: dict[tuple[str, str, int], dict[str, Any]] = {}
_lock = threading.Lock()


def param_importance(db_url: str, study_name: str, finished: int) -> dict[str, Any]:
    """{"evaluator", "trials", "importances": [{"name", "value"}], "reason"}; `reason` says
    why the list is empty (too few completed trials, no study)."""
    key = (db_url, study_name, finished)
    with _lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    result = _compute(db_url, study_name)
    with _lock:
        if len(_cache) >= _CACHE_SIZE:
            _cache.pop(next(iter(_cache)))
        _cache[key] = result
    return result


def optuna_study_id(db_url: str, study_name: str) -> int | None:
    """The id optuna-dashboard puts in its URLs (/dashboard/studies/<id>)."""
    try:
        return _storage(db_url).get_study_id_from_name(study_name)
    except KeyError:
        return None


@lru_cache(maxsize=8)
def _storage(db_url: str) -> optuna.storages.BaseStorage:
    """One storage per database: Optuna's cache of finished trials then survives between
    requests, and the engine is not rebuilt on every call."""
    return optuna.storages.get_storage(db_url)


def _compute(db_url: str, study_name: str) -> dict[str, Any]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created in memory" line
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
    name = type(evaluator).__name__
    try:
        study = optuna.load_study(study_name=study_name, storage=_storage(db_url))
    except KeyError:
        return _empty(name, 0, "the sweep has no Optuna study yet")
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return _empty(name, len(complete), "needs at least 2 completed trials")
    sample = _evenly_spaced(complete, TRIAL_CAP)
    subset = optuna.create_study(directions=study.directions)
    subset.add_trials(sample)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores = optuna.importance.get_param_importances(subset, evaluator=evaluator)
    except (ValueError, RuntimeError) as exc:  # e.g. no parameter varies yet
        return _empty(name, len(complete), str(exc).splitlines()[0])
    importances = [{"name": k, "value": float(v)} for k, v in scores.items()]
    return {
        "evaluator": name,
        "trials": len(complete),
        "sampled": len(sample),
        "importances": importances,
        "reason": None if importances else "no searched parameter varies between trials",
    }


def _evenly_spaced(trials: list[Any], cap: int) -> list[Any]:
    if len(trials) <= cap:
        return list(trials)
    step = len(trials) / cap
    return [trials[int(i * step)] for i in range(cap)]


def _empty(evaluator: str, trials: int, reason: str) -> dict[str, Any]:
    return {
        "evaluator": evaluator,
        "trials": trials,
        "sampled": 0,
        "importances": [],
        "reason": reason,
    }
