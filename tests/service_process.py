"""A real `sweepctl serve` in a subprocess, for tests that need the sweep to outlive the
process that submitted it (and the browser tests). It keeps its token where a user's
server would, `$SWEEPCTL_HOME/serve-token`, and the tests read it from there."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import REPO
from tests.test_strategies import ANALYTIC


@dataclass
class Server:
    url: str
    db_url: str
    process: subprocess.Popen[bytes]
    log: Path
    home: Path

    @property
    def token(self) -> str:
        return (self.home / "serve-token").read_text().strip()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def wait_until(self, check: object, timeout: float = 90.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():  # type: ignore[operator]
                return
            assert self.process.poll() is None, f"server exited:\n{self.log.read_text()[-3000:]}"
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}:\n{self.log.read_text()[-3000:]}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(home: Path, step_seconds: float) -> dict[str, str]:
    env = {
        **os.environ,
        "SWEEPCTL_HOME": str(home),
        "SWEEPCTL_REPLAY_STEP_SECONDS": str(step_seconds),
        "PYTHONPATH": str(REPO),
    }
    env.pop("SWEEPCTL_TOKEN", None)  # the server's token file is the one in use
    return env


@contextmanager
def running_server(
    tmp: Path,
    db_url: str,
    step_seconds: float = 0.2,
    extra: tuple[str, ...] = (),
    host: str = "127.0.0.1",
) -> Iterator[Server]:
    port = free_port()
    home = tmp / "home"
    log = tmp / f"serve-{port}.log"
    command = [
        *(sys.executable, "-m", "sweepctl", "serve", "--db", db_url),
        *("--host", host, "--port", str(port), "--backend", "inline", "--runner", ANALYTIC),
        *extra,
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=tmp, env=server_env(home, step_seconds), stdout=sink, stderr=sink
        )
    server = Server(f"http://127.0.0.1:{port}", db_url, process, log, home)
    try:
        server.wait_until(lambda: _healthy(server), timeout=60, what="the server to start")
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _healthy(server: Server) -> bool:
    """Up, with its token written (reads off loopback need it)."""
    if not (server.home / "serve-token").exists():
        return False
    try:
        reply = httpx.get(f"{server.url}/api/v1/health", headers=server.auth, timeout=2)
    except httpx.HTTPError:
        return False
    return reply.status_code == 200
