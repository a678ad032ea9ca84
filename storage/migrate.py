"""Run sweepctl's Alembic migrations from code, without an alembic.ini.

The Store calls ``upgrade`` on every open, so a fresh database is usable at once
and an old one is brought forward; both paths must be cheap and idempotent.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from sweepctl.storage.models import TABLE_PREFIX, VERSION_TABLE, Base

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Arbitrary constant shared by every sweepctl process: serialises concurrent
# first-time upgrades on PostgreSQL, where two CREATE TABLEs would otherwise race.
_PG_ADVISORY_LOCK_KEY = 0x5357_4545_5043_544C  # "SWEEPCTL"
_ALEMBIC_LOCK = threading.Lock()


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> None:
    """Bring the schema to head in one transaction.

    Across processes, PostgreSQL serialises on an advisory lock and SQLite on
    BEGIN IMMEDIATE. Within a process a lock is needed too: Alembic keeps the
    running migration context in module globals, so two threads migrating even
    different databases at once would corrupt each other's run.
    """
    with _ALEMBIC_LOCK, engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_ADVISORY_LOCK_KEY}
            )
        command.upgrade(alembic_config(connection), "head")


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Keep autogenerate blind to Optuna's tables that share the database."""
    if type_ == "table":
        return name is not None and name.startswith(TABLE_PREFIX) and name != VERSION_TABLE
    return True


def _migration_context(connection: Connection) -> MigrationContext:
    opts = {"version_table": VERSION_TABLE, "compare_type": True, "include_name": include_name}
    return MigrationContext.configure(connection, opts=opts)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return _migration_context(connection).get_current_revision()


def schema_diff(engine: Engine) -> list[Any]:
    """Differences between the ORM models and the live schema; empty when in sync."""
    with engine.connect() as connection:
        return list(compare_metadata(_migration_context(connection), Base.metadata))
