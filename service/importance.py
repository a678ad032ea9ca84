"""Parameter importance of a sweep, from Optuna's own evaluator on the sweep's study.

The study lives in the same database under the sweep's name, so Optuna's evaluator sees
exactly the trials Optuna was told about. Costs are kept off the 2-second refresh:

- the evaluator is PED-ANOVA (`PedAnovaImportanceEvaluator`): 0.01 s on 958 trials here,
  where fANOVA took 35-60 s with its default 64 trees (its marginal variances grow with the
  tree size) and still 1 s with 16 shallow trees; both rank the analytic sweep's parameters
  the same way (bench/dashboard_scale.py measures the endpoint at 10,000 trials);
- results are cached per (database, study, number of finished sweepctl trials): until
  another trial finishes the answer cannot change;
- opening the sweep page starts the computation in the background (`prefetch`), so the
  chart's request usually finds it done; concurrent requests share one computation;
- it runs in a separate process: reading 10,000 trials through Optuna is seconds of pure
  Python, and in a thread it held the GIL while the page's other requests waited
  (bench/dashboard_scale.py saw the trials poll go from 0.6 s to 2.4 s meanwhile).

That process must never outlive the server (an orphan once held 280 MB and two PostgreSQL
connections): the app's shutdown ends it (`shutdown`), and the worker itself exits when
its parent is gone, in case the server was killed without a chance to clean up.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import warnings
from concurrent.futures import Future, ProcessPoolExecutor, TimeoutError
from concurrent.futures.process import BrokenProcessPool
from functools import lru_cache
from typing import Any

import optuna

_CACHE_SIZE = 64
WAIT_S = 0.5  # then answer "pending" (with the previous result, if any) and let it finish
_cache: dict[tuple[str, str, int], Future[dict[str, Any]]] = {}
_latest: dict[tuple[str, str], dict[str, Any]] = {}
_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
PARENT_CHECK_S = 1.0


def param_importance(db_url: str, study_name: str, finished: int) -> dict[str, Any]:
    """{"evaluator", "trials", "importances": [{"name", "value"}], "reason", "pending"};
    `reason` says why the list is empty (too few completed trials, no study). A first
    computation on a large study (about 4 s at 10,000 trials: Optuna reads every trial)
    answers `pending: true` with the previous result, so no request waits for it."""
    future = _future(db_url, study_name, finished)
    try:
        result = future.result(timeout=WAIT_S)
    except TimeoutError:
        previous = _latest.get((db_url, study_name))
        return {**(previous or _empty("", 0, "computing…")), "pending": True}
    except BrokenProcessPool:  # the worker died (killed, out of memory): the next call retries
        with _lock:
            _cache.pop((db_url, study_name, finished), None)
        return {**_empty("", 0, "the importance worker stopped; retrying"), "pending": True}
    _latest[(db_url, study_name)] = result
    return {**result, "pending": False}


def prefetch(db_url: str, study_name: str, finished: int) -> None:
    """Start computing now; the chart's request a moment later waits for the same result."""
    _future(db_url, study_name, finished)


def _future(db_url: str, study_name: str, finished: int) -> Future[dict[str, Any]]:
    key = (db_url, study_name, finished)
    with _lock:
        future = _cache.get(key)
        if future is None:
            if len(_cache) >= _CACHE_SIZE:
                _cache.pop(next(iter(_cache)))
            future = _worker().submit(_compute, db_url, study_name)
            _cache[key] = future
    return future


def _worker() -> ProcessPoolExecutor:
    """Spawned, not forked: the server has threads (uvicorn, the controller, Ray)."""
    global _pool
    if _pool is None or getattr(_pool, "_broken", False):
        _pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_watch_parent,
            initargs=(os.getpid(),),
        )
    return _pool


def shutdown() -> None:
    """End the worker now: queued computations are dropped, a running one is killed (it
    only reads). Called from the app's lifespan shutdown."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
        _cache.clear()
    if pool is None:
        return
    processes = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()


def _watch_parent(parent: int) -> None:
    """In the worker: a terminal's Ctrl-C is the server's to handle, and a parent that
    died (SIGKILL, out of memory) takes this process with it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            threading.Event().wait(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


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
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    name = type(evaluator).__name__
    try:
        study = optuna.load_study(study_name=study_name, storage=_storage(db_url))
    except KeyError:
        return _empty(name, 0, "the sweep has no Optuna study yet")
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return _empty(name, len(complete), "needs at least 2 completed trials")
    try:
        with warnings.catch_warnings():  # PED-ANOVA is marked experimental
            warnings.simplefilter("ignore")
            scores = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError) as exc:  # e.g. no parameter varies yet
        return _empty(name, len(complete), str(exc).splitlines()[0])
    importances = [{"name": k, "value": float(v)} for k, v in scores.items()]
    return {
        "evaluator": name,
        "trials": len(complete),
        "importances": importances,
        "reason": None if importances else "no searched parameter varies between trials",
    }


def _empty(evaluator: str, trials: int, reason: str) -> dict[str, Any]:
    return {"evaluator": evaluator, "trials": trials, "importances": [], "reason": reason}
