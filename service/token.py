"""The server's token, kept like Jupyter keeps its own: generated on the first start,
stored in `$SWEEPCTL_HOME/serve-token` readable by its owner only, reused on later starts.

Every change needs the token even on loopback: any local user, and any web page the
browser opens (through DNS rebinding or a forged form), can reach a loopback port. The CLI
on the same machine reads the file itself, so `sweepctl launch --server` needs no setup;
`SWEEPCTL_TOKEN` overrides the file on both sides.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

from sweepctl.service.settings import TOKEN_ENV

TOKEN_FILE = "serve-token"
log = logging.getLogger("sweepctl.serve")


def token_path(home: Path) -> Path:
    return home / TOKEN_FILE


def server_token(home: Path) -> str:
    """SWEEPCTL_TOKEN if set, else the token file's, created on first use."""
    return os.environ.get(TOKEN_ENV) or _file_token(token_path(home))


def client_token(home: Path) -> str | None:
    """What the CLI sends: SWEEPCTL_TOKEN, else the local server's file if we may read it."""
    token = os.environ.get(TOKEN_ENV)
    if token:
        return token
    try:
        return token_path(home).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _file_token(path: Path) -> str:
    """A file another user could read (or we do not own) holds a leaked token: it is
    replaced by a fresh one rather than trusted or merely chmod-ed."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        info = path.lstat()
    except FileNotFoundError:
        return _create(path)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
        raise PermissionError(f"{path}: not a regular file owned by this user; remove it")
    if info.st_mode & 0o077:
        log.warning("%s was readable by others; replaced it with a new token", path)
        path.unlink()
        return _create(path)
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        path.unlink()
        return _create(path)
    return token


def _create(path: Path) -> str:
    """O_EXCL with mode 0600: the token is never readable by others, not even briefly."""
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token
