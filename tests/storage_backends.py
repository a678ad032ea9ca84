"""Backend fixtures for the storage contract suite: one suite, every database.

Lives outside tests/conftest.py (owned elsewhere); test modules load it with
``pytest_plugins = ["tests.storage_backends"]``.

PostgreSQL: each test gets a brand-new database (``sweepctl_test_<uuid8>``)
created through an AUTOCOMMIT admin connection and dropped WITH (FORCE) at
teardown - cheap (~0.1 s) and it gives migration tests a truly empty schema.
An unreachable server skips locally but FAILS when $CI is set, so CI can never
silently lose the PostgreSQL half.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from storage.store import Store
from storage.urls import normalize_db_url, redact_url

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


@pytest.fixture
def pg_url(pg_admin_engine: Engine) -> Iterator[str]:
    name = f"sweepctl_test_{uuid.uuid4().hex[:8]}"
    with pg_admin_engine.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        # render_as_string: str(url) would mask the password and break authentication.
        yield pg_admin_engine.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with pg_admin_engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty database of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sweepctl.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    try:
        yield opened
    finally:
        opened.close()
