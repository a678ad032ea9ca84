"""The newest schema revision, read from the migration files without importing Alembic.

A read-only command (`status`, `list`, `show`) only needs to know that the database is at
the head; Alembic is a third of such a command's imports, so the common answer is read
here and every other case is left to Alembic (storage.migrate).
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

_VERSIONS_DIR = Path(__file__).parent / "migrations" / "versions"
_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.M)


@functools.cache
def linear_head_revision() -> str | None:
    """The newest migration, read from the version files' own `revision` and
    `down_revision` lines without importing Alembic (a third of a read-only command's
    imports); None unless they form one unbranched chain, and then Alembic decides."""
    parents: dict[str, str | None] = {}
    for path in _VERSIONS_DIR.glob("*.py"):
        found = dict(_REVISION_LINE.findall(path.read_text(encoding="utf-8")))
        if "revision" not in found:
            continue
        try:
            revision = ast.literal_eval(found["revision"])
            parent = ast.literal_eval(found.get("down_revision", "None"))
        except (ValueError, SyntaxError):
            return None
        if not isinstance(revision, str) or not isinstance(parent, (str, type(None))):
            return None  # a merge (tuple of parents) or something computed
        parents[revision] = parent
    heads = set(parents) - set(parents.values())
    roots = [revision for revision, parent in parents.items() if parent is None]
    return heads.pop() if len(heads) == 1 and len(roots) == 1 else None
