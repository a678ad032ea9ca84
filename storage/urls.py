"""Where the database lives and how its URL is shown.

Kept apart from the Store so the CLI can resolve and print a URL without
opening (and migrating) the database.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_HOME_ENV = "SWEEPCTL_HOME"
DB_ENV = "SWEEPCTL_DB"
DEFAULT_HOME_DIR = "sweepctl-runs"
DB_FILENAME = "sweepctl.db"

# Both spellings appear in the wild (Heroku-style URLs use "postgres"); without
# an explicit driver SQLAlchemy would look for psycopg2, which we do not ship.
_PG_SCHEMES = frozenset({"postgres", "postgresql"})
_PG_DRIVER_SCHEME = "postgresql+psycopg"


def sweepctl_home() -> Path:
    """Resolved once per call so a changed cwd or env var is honoured by later calls."""
    raw = os.environ.get(DEFAULT_HOME_ENV) or DEFAULT_HOME_DIR
    return Path(raw).expanduser().resolve()


def _sqlite_url_for(path: Path) -> str:
    return URL.create("sqlite", database=str(path)).render_as_string(hide_password=False)


def normalize_db_url(value: str) -> str:
    """Accept bare file paths and driverless PostgreSQL URLs; leave everything else alone."""
    value = value.strip()
    if "://" not in value:
        return _sqlite_url_for(Path(value).expanduser().resolve())
    scheme, rest = value.split("://", 1)
    if scheme.lower() in _PG_SCHEMES:
        return f"{_PG_DRIVER_SCHEME}://{rest}"
    return value


def default_db_url() -> str:
    from_env = os.environ.get(DB_ENV)
    if from_env:
        return normalize_db_url(from_env)
    return _sqlite_url_for(sweepctl_home() / DB_FILENAME)


def resolve_db_url(cli_value: str | None) -> str:
    """Precedence: --db flag, then $SWEEPCTL_DB, then the SQLite file under the home."""
    if cli_value:
        return normalize_db_url(cli_value)
    return default_db_url()


def redact_url(url: str) -> str:
    """Safe for logs and error messages; unparsable input has no password to hide."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url
