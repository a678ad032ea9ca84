"""A real `sweepctl serve` subprocess: nothing it spawned outlives it (SIGTERM, SIGINT),
bound beyond loopback it wants the token for reads, and a chunked body over the limit is
cut off on the wire."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.service_process import Server, running_server
from tests.test_sweep_lifecycle import write_analytic_spec

GONE_WITHIN_S = 15.0


def _descendants_once_importance_runs(server: Server, tmp_path: Path) -> list[psutil.Process]:
    """Open a sweep page: it starts the importance worker (a spawned process)."""
    body = {"yaml": write_analytic_spec(tmp_path, "orphans").read_text()}
    reply = httpx.post(f"{server.url}/api/v1/sweeps", json=body, headers=server.auth, timeout=30)
    assert reply.status_code == 201, reply.text
    page = httpx.get(f"{server.url}{reply.json()['url']}", timeout=30)
    assert page.status_code == 200
    parent = psutil.Process(server.process.pid)
    server.wait_until(lambda: parent.children(recursive=True), what="the importance worker")
    return parent.children(recursive=True)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _read_to_close(sock: socket.socket) -> str:
    """The 413 says `connection: close`: read until the server closes (headers and body
    may arrive in separate segments)."""
    parts = []
    try:
        while chunk := sock.recv(65536):
            parts.append(chunk)
    except ConnectionResetError:
        pass  # what arrived before the reset is still the answer
    return b"".join(parts).decode("latin-1")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_no_process_outlives_serve(tmp_path: Path, sqlite_url: str, signum: int) -> None:
    with running_server(tmp_path, sqlite_url) as server:
        children = _descendants_once_importance_runs(server, tmp_path)
        assert children, "the sweep page started no worker"
        server.process.send_signal(signum)
        server.process.wait(timeout=GONE_WITHIN_S)
        deadline = time.monotonic() + GONE_WITHIN_S
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [(c.pid, c.cmdline()) for c in children if _alive(c)]
        for child in children:  # never leave one behind for the next test
            if _alive(child):
                child.kill()
        assert not left, f"still running after {signal.Signals(signum).name}: {left}"


def test_a_killed_servers_importance_worker_exits_by_itself(
    tmp_path: Path, sqlite_url: str
) -> None:
    """SIGKILL leaves no chance to clean up: the worker notices its parent is gone."""
    with running_server(tmp_path, sqlite_url) as server:
        children = _descendants_once_importance_runs(server, tmp_path)
        server.process.kill()
        server.process.wait(timeout=GONE_WITHIN_S)
        deadline = time.monotonic() + GONE_WITHIN_S
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [c.pid for c in children if _alive(c)]
        for child in children:
            if _alive(child):
                child.kill()
        assert not left


def test_bound_beyond_loopback_reads_need_the_token(tmp_path: Path, sqlite_url: str) -> None:
    with running_server(tmp_path, sqlite_url, host="0.0.0.0") as server:
        anonymous = httpx.get(f"{server.url}/api/v1/sweeps", timeout=10)
        assert anonymous.status_code == 401
        assert httpx.get(f"{server.url}/api/v1/sweeps", headers=server.auth).status_code == 200
        foreign = httpx.get(
            f"{server.url}/api/v1/sweeps", headers={**server.auth, "Host": "evil.example"}
        )
        assert foreign.status_code == 400


def test_a_chunked_body_over_the_limit_is_cut_off_with_413(tmp_path: Path, sqlite_url: str) -> None:
    extra = ("--max-body-bytes", "4096")
    with running_server(tmp_path, sqlite_url, extra=extra) as server:
        port = int(server.url.rsplit(":", 1)[1])
        head = (
            "POST /api/v1/sweeps HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {server.token}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"%x\r\n%s\r\n" % (1024, b"x" * 1024)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            # past the limit, then silence: sending on after the answer would make the
            # server's close a reset that can swallow the answer
            sock.sendall(head.encode() + b'a\r\n{"yaml": "\r\n' + chunk * 5)
            answer = _read_to_close(sock)
        assert answer.startswith("HTTP/1.1 413"), answer[:200]
        assert "over 4096 bytes" in answer
        with_length = httpx.post(
            f"{server.url}/api/v1/sweeps", content=b"x" * 5000, headers=server.auth
        )
        assert with_length.status_code == 413
