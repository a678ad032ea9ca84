"""The store under load, for bench/faults.py: several sweeps writing at once.

3 processes (one per sweep), each with 4 writer threads sharing one Store, do the writes
every trial makes: create (PENDING), RUNNING, 3 evaluations, 2 heartbeats, COMPLETED.
Every call is timed. A lock error is any exception whose message says the database is
locked or busy; lost rows are trials or evaluations that should exist at the end and
do not. One SQLite file, or one PostgreSQL database, serves all three processes.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sweepctl.storage import EvaluationRecord, Store, TrialState

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
SWEEPS, TRIALS, WRITERS, EVALUATIONS = 3, 200, 4, 3


@contextlib.contextmanager
def pg_database(store: str) -> Iterator[str | None]:
    """A fresh PostgreSQL database for one case (dropped after), or None for SQLite."""
    if store != "postgresql":
        yield None
        return
    import psycopg

    name = f"sweepctl_faults_{uuid.uuid4().hex[:8]}"
    server = PG_SERVER.replace("+psycopg", "")
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_SERVER.rsplit("/", 1)[0] + f"/{name}"
    finally:
        for _ in range(30):  # a restarted server may still be coming up
            try:
                with psycopg.connect(server, autocommit=True) as connection:
                    connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                break
            except psycopg.OperationalError:
                time.sleep(1)


def _timed(latencies: list[float], errors: list[str], call: Any, *args: Any) -> Any:
    started = time.perf_counter()
    try:
        return call(*args)
    except Exception as exc:
        errors.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return None
    finally:
        latencies.append(time.perf_counter() - started)


def _one_trial(store: Store, sweep: str, index: int, out: tuple[list[float], list[str]]) -> None:
    latencies, errors = out
    trial_id = _timed(
        latencies, errors, store.create_trial, sweep, {"name": sweep}, {"i": index}, {}
    )
    if trial_id is None:
        return
    _timed(latencies, errors, store.set_trial_state, trial_id, TrialState.RUNNING)
    for step in range(1, EVALUATIONS + 1):
        record = EvaluationRecord(epoch=float(step), step=step, eval_loss=1.0 / step)
        _timed(latencies, errors, store.record_evaluation, trial_id, record)
        if step < EVALUATIONS:
            _timed(latencies, errors, store.heartbeat, trial_id)
    _timed(latencies, errors, _complete, store, trial_id)


def _complete(store: Store, trial_id: int) -> None:
    store.set_trial_state(trial_id, TrialState.COMPLETED, objective=1.0 / EVALUATIONS)


def _sweep_process(url: str, sweep: str) -> tuple[list[float], list[str]]:
    out: tuple[list[float], list[str]] = ([], [])
    with Store(url) as store, ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(lambda i: _one_trial(store, sweep, i, out), range(TRIALS)))
    return out


def load_row(store: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, pg_database(store) as pg_url:
        url = pg_url or f"sqlite:///{tmp}/load.db"
        Store(url).close()  # the schema first: the three processes only write rows
        context = multiprocessing.get_context("spawn")
        started = time.perf_counter()
        with context.Pool(SWEEPS) as pool:
            parts = pool.starmap(_sweep_process, [(url, f"load-{i}") for i in range(SWEEPS)])
        wall = time.perf_counter() - started
        with Store(url) as check:
            rows = check.count_rows()
    latencies = sorted(x for part in parts for x in part[0])
    errors = [e for part in parts for e in part[1]]
    expected_trials = SWEEPS * TRIALS
    lost = (expected_trials - rows["sweepctl_trials"]) + (
        expected_trials * EVALUATIONS - rows["sweepctl_evaluations"]
    )
    return {
        "store": store,
        "sweeps": SWEEPS,
        "trials": TRIALS,
        "writers": WRITERS,
        "writes": len(latencies),
        "errors": len(errors),
        "lock_errors": sum("locked" in e or "busy" in e.lower() for e in errors),
        "first_error": errors[0] if errors else None,
        "lost_rows": lost,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "wall_s": wall,
    }
