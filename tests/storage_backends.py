"""Backend fixtures and helpers for the storage contract suite: one suite, every database.

Lives outside tests/conftest.py (owned elsewhere); test modules load it with
``pytest_plugins = ["tests.storage_backends"]``.

PostgreSQL: databases are named ``sweepctl_test_<uuid8>``, created through an
AUTOCOMMIT admin connection and dropped WITH (FORCE) at teardown. ``store`` uses
one migrated database per session, emptied before each test with DELETE plus
sequence restarts over a kept connection (~10 ms; TRUNCATE costs ~100 ms per
test because it rewrites every table's files); ``store_url`` gives a brand-new
empty database (~0.3 s incl. drop) for the few tests about migrations and
sharing the database with Optuna. SQLite: ``store`` copies a file migrated once
per session (~4x cheaper than migrating a new file every test).
An unreachable server skips locally but FAILS when $CI is set, so CI can never
silently lose the PostgreSQL half.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from sweepctl.storage.models import Base
from sweepctl.storage.records import EvaluationRecord
from sweepctl.storage.states import TrialState
from sweepctl.storage.store import Store
from sweepctl.storage.urls import normalize_db_url, redact_url

PG_URL_ENV = "SWEEPCTL_TEST_PG_URL"
DEFAULT_PG_SERVER_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BACKENDS = ("sqlite", "postgresql")


def _ci_enabled() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str) -> None:
    if _ci_enabled():
        pytest.fail(f"{reason} (CI is set: the PostgreSQL backend must not be skipped)", False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_admin_engine() -> Iterator[Engine]:
    """AUTOCOMMIT because CREATE/DROP DATABASE cannot run inside a transaction."""
    url = normalize_db_url(os.environ.get(PG_URL_ENV) or DEFAULT_PG_SERVER_URL)
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        engine.dispose()
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        _unavailable(f"PostgreSQL at {redact_url(url)} unreachable: {detail}")
    yield engine
    engine.dispose()


@contextmanager
def _fresh_database(admin: Engine) -> Iterator[str]:
    name = f"sweepctl_test_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        # render_as_string: str(url) would mask the password and break authentication.
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_url(pg_admin_engine: Engine) -> Iterator[str]:
    """An empty database of its own, for tests about migrations and schema sharing."""
    with _fresh_database(pg_admin_engine) as url:
        yield url


@pytest.fixture(scope="session")
def pg_shared_url(pg_admin_engine: Engine) -> Iterator[str]:
    """Migrated once per session; ``store`` empties it, which is far cheaper than
    creating and migrating a database for every test."""
    with _fresh_database(pg_admin_engine) as url:
        Store(url).close()
        yield url


@pytest.fixture(scope="session")
def pg_reset_engine(pg_shared_url: str) -> Iterator[Engine]:
    """One kept connection for emptying the shared database; disposed before it is dropped."""
    engine = create_engine(pg_shared_url, pool_size=1)
    yield engine
    engine.dispose()


def _empty_pg(engine: Engine) -> None:
    """Children first (FKs), then ids restarted so every test sees ids from 1."""
    tables = list(reversed(Base.metadata.sorted_tables))
    statements = [f"DELETE FROM {table.name}" for table in tables]
    statements += [
        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), 1, false)" for table in tables
    ]
    with engine.begin() as connection:
        connection.exec_driver_sql("; ".join(statements))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite file; closing the Store checkpoints the WAL into it."""
    path = tmp_path_factory.mktemp("sqlite-template") / "store.db"
    Store(f"sqlite:///{path}").close()
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an EMPTY (unmigrated) database of the current backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'sweepctl.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def store(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An open Store on a migrated database with no rows. Do not combine with store_url:
    on PostgreSQL the two are different databases."""
    if backend == "sqlite":
        path = tmp_path / "store.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_shared_url")
        _empty_pg(request.getfixturevalue("pg_reset_engine"))
    opened = Store(url)
    try:
        yield opened
    finally:
        opened.close()


# --- helpers ----------------------------------------------------------------------

SPEC = {"name": "demo", "model": "minilm", "search": {"lr": [1e-5, 5e-5]}}


def new_trial(store: Store, sweep: str = "demo", **params: Any) -> int:
    return store.create_trial(sweep, SPEC, params or {"lr": 1e-5}, {"lr": 1e-5, "epochs": 2})


def running_trial(store: Store) -> int:
    trial_id = new_trial(store)
    store.set_trial_state(trial_id, TrialState.RUNNING)
    return trial_id


def drive(store: Store, path: list[TrialState]) -> int:
    trial_id = new_trial(store)
    for state in path:
        store.set_trial_state(trial_id, state)
    return trial_id


def race(workers: list[Callable[[], None]]) -> list[BaseException | None]:
    """Start all callables at once; return each one's exception (None on success)."""
    barrier = threading.Barrier(len(workers))
    outcomes: list[BaseException | None] = [None] * len(workers)

    def run(index: int) -> None:
        barrier.wait()
        try:
            workers[index]()
        except BaseException as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(workers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def worker_process(url: str, count: int) -> list[int]:
    """Runs in a spawned process: the real deployment shape (one Store per worker)."""
    with Store(url) as store:
        ids = [new_trial(store, "shared") for _ in range(count)]
        for trial_id in ids:
            store.set_trial_state(trial_id, TrialState.RUNNING)
            store.record_evaluation(trial_id, EvaluationRecord(epoch=1.0, step=1))
            store.set_trial_state(trial_id, TrialState.COMPLETED, objective=0.5)
        return ids
