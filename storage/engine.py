"""Engine construction: the per-backend settings the Store's guarantees rest on.

SQLite gets WAL (readers never block the writer), foreign keys (for ON DELETE
CASCADE), a 120 s busy timeout and BEGIN IMMEDIATE for write transactions
(check-then-act is atomic across processes). The timeout is that long because a
writer can be frozen (SIGSTOP, a swapped-out host) inside its transaction, holding
the only write lock: the orchestrator's watchdog kills it after 3 missed heartbeats
(90 s at the default 30 s interval), and until then every other writer, Optuna's
included (`optuna_storage`), should wait rather than fail. Every backend serialises JSON with
``allow_nan=False`` so a NaN that escaped sanitising fails loudly instead of being
stored differently.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import StaticPool

# Execution option marking read-only sessions, so SQLite can start them DEFERRED
# instead of taking the write lock.
READ_ONLY_OPTION = "sweepctl_read_only"
_SQLITE_BUSY_TIMEOUT_S = 120
_SQLITE_PRAGMAS = (f"busy_timeout={_SQLITE_BUSY_TIMEOUT_S * 1000}", "foreign_keys=ON")

_dumps = functools.partial(json.dumps, allow_nan=False)


def _on_sqlite_connect(dbapi_connection: Any, _record: object) -> None:
    # Hand transaction control to SQLAlchemy's "begin" hook below: pysqlite's own
    # lazy BEGIN would let a read-then-write transaction race other processes.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(f"PRAGMA {pragma}")
    _enable_wal(cursor)
    cursor.close()


def _enable_wal(cursor: Any) -> None:
    """Switching to WAL needs an exclusive lock and SQLite reports BUSY at once instead
    of honouring busy_timeout, so processes opening a new file together must retry.
    WAL is persistent, so later connections only read the mode."""
    deadline = time.monotonic() + _SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if mode not in ("wal", "memory"):
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _on_sqlite_begin(connection: Connection) -> None:
    # IMMEDIATE takes the write lock up front, making every write transaction's
    # check-then-act atomic across processes; busy_timeout makes others wait.
    read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
    connection.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


def optuna_storage(url: str) -> Any:
    """The Optuna storage for the sweep's database: on SQLite with the same busy timeout
    as the Store (pysqlite's own default of 5 s would fail a sampler's write while a
    frozen worker holds the lock); elsewhere the URL as Optuna takes it."""
    if make_url(url).get_backend_name() != "sqlite":
        return url
    import optuna

    engine_kwargs = {"connect_args": {"timeout": _SQLITE_BUSY_TIMEOUT_S}}
    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)


def create_store_engine(url: str, *, read_only: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, json_serializer=_dumps, pool_pre_ping=True)
    in_memory = parsed.database in (None, "", ":memory:")
    if read_only and not in_memory:
        return _read_only_sqlite_engine(Path(parsed.database or "").expanduser())
    if in_memory:
        # One shared connection, otherwise every pooled connection is a new empty DB.
        engine = create_engine(
            parsed,
            json_serializer=_dumps,
            poolclass=StaticPool,
            connect_args={"check_same_thread": False},
        )
    else:
        Path(parsed.database or "").expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, json_serializer=_dumps)
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _read_only_sqlite_engine(path: Path) -> Engine:
    """A file this process may not write (a read-only copy or mount) opens through SQLite's
    URI read-only mode; `immutable` as well when its directory is read-only too, because
    reading a WAL database otherwise needs to create its -shm file next to it. A file we
    can write opens normally: its live writers need the usual locking."""
    if not path.is_file():
        raise FileNotFoundError(f"no sweepctl database at {path}")
    writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    if writable:
        engine = create_engine(f"sqlite:///{path}", json_serializer=_dumps)
        event.listen(engine, "connect", _on_sqlite_connect_read_only)
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    flags = "mode=ro" if os.access(path.parent, os.W_OK) else "mode=ro&immutable=1"
    uri = f"file:{quote(str(path.resolve()))}?{flags}"
    engine = create_engine(
        "sqlite://",
        creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False),
        json_serializer=_dumps,
    )
    event.listen(engine, "connect", _on_sqlite_connect_read_only)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect_read_only(dbapi_connection: Any, _record: object) -> None:
    """No journal-mode switch: that is a write."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_S * 1000}")
    cursor.close()
