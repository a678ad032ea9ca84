"""Alembic environment for sweepctl's tables only.

Normally driven by ``storage.migrate.upgrade``, which hands over a live
connection via ``config.attributes["connection"]`` so migrations run inside the
Store's own engine (PRAGMAs, advisory lock, transaction). A URL in
``sqlalchemy.url`` still works for ad-hoc ``alembic`` CLI use.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from sweepctl.storage.migrate import include_name
from sweepctl.storage.models import VERSION_TABLE, Base

config = context.config


def _configure(
    *, connection: Connection | None = None, url: str | None = None, literal_binds: bool = False
) -> None:
    """The options both modes share; the keyword defaults are `context.configure`'s own."""
    context.configure(
        connection=connection,
        url=url,
        literal_binds=literal_binds,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,
        compare_type=True,
        include_name=include_name,
    )


def run_with_connection(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with_connection(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as fresh:
            run_with_connection(fresh)
    finally:
        engine.dispose()


def run_migrations_offline() -> None:
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
