"""The server's token, kept like Jupyter's: created 0600 on the first start, reused, a
file others could read replaced, SWEEPCTL_TOKEN overriding it; `serve` prints a login URL
with it and `sweepctl launch --server` on the same machine finds it by itself."""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path

import httpx
import pytest

from sweepctl.serve_cli import login_url, serve_settings
from sweepctl.service.token import client_token, server_token, token_path
from tests.service_process import running_server
from tests.test_service_controller import launch_with_server, sweep_state
from tests.test_sweep_lifecycle import write_analytic_spec


def serve_args(**extra: object) -> argparse.Namespace:
    values: dict[str, object] = {
        **{"host": "127.0.0.1", "port": 8123, "db": None, "ray_address": None},
        **{"max_sweeps": 1, "backend": "inline", "runner": "noop", "allowed_host": []},
        "max_body_bytes": 1024 * 1024,
        "notify": [],
    }
    return argparse.Namespace(**{**values, **extra})


def test_the_token_file_is_created_owner_only_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SWEEPCTL_TOKEN", raising=False)
    home = tmp_path / "home"
    first = server_token(home)
    assert len(first) >= 40
    assert stat.S_IMODE(token_path(home).stat().st_mode) == 0o600
    assert server_token(home) == first  # a restart keeps the login URL valid
    assert client_token(home) == first


def test_a_token_file_others_can_read_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SWEEPCTL_TOKEN", raising=False)
    first = server_token(tmp_path)
    os.chmod(token_path(tmp_path), 0o644)
    second = server_token(tmp_path)
    assert second != first
    assert stat.S_IMODE(token_path(tmp_path).stat().st_mode) == 0o600
    token_path(tmp_path).write_text("")
    assert server_token(tmp_path) not in ("", second)  # an empty file is not a token


def test_sweepctl_token_overrides_the_file_on_both_sides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWEEPCTL_TOKEN", "from-env")
    assert server_token(tmp_path) == "from-env" and not token_path(tmp_path).exists()
    assert client_token(tmp_path) == "from-env"
    monkeypatch.delenv("SWEEPCTL_TOKEN")
    assert client_token(tmp_path) is None  # no server here: the CLI sends nothing


def test_serve_settings_carry_the_token_hosts_and_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWEEPCTL_HOME", str(tmp_path))
    monkeypatch.delenv("SWEEPCTL_TOKEN", raising=False)
    args = serve_args(host="0.0.0.0", allowed_host=["Sweeps.Lab"], max_body_bytes=4096)
    settings = serve_settings(args)
    assert settings.token == token_path(tmp_path).read_text().strip()
    assert settings.reads_need_token and "sweeps.lab" in settings.host_names
    assert settings.max_body_bytes == 4096
    assert login_url(settings) == f"http://127.0.0.1:8123/?token={settings.token}"


def test_serve_prints_the_login_url_and_the_cli_on_this_machine_uses_its_token(
    tmp_path: Path, sqlite_url: str
) -> None:
    spec = write_analytic_spec(tmp_path, "by-cli")
    with running_server(tmp_path, sqlite_url) as server:
        server.wait_until(lambda: "log in:" in server.log.read_text(), what="the login URL")
        assert f"log in: {server.url}/?token={server.token}" in server.log.read_text()
        assert stat.S_IMODE((server.home / "serve-token").stat().st_mode) == 0o600
        body = {"yaml": spec.read_text()}
        refused = httpx.post(f"{server.url}/api/v1/sweeps", json=body, timeout=30)
        assert refused.status_code == 401
        cli = launch_with_server(spec, server.url, server.home)  # SWEEPCTL_TOKEN unset
        assert cli.returncode == 0, cli.stderr
        assert "submitted sweep by-cli" in cli.stdout
        assert sweep_state(sqlite_url, "by-cli").name in ("PENDING", "RUNNING", "COMPLETED")


def test_serve_notify_urls_are_checked_and_a_bad_one_named_redacted() -> None:
    from sweepctl.spec.errors import UsageError

    good = serve_settings(serve_args(notify=["https://hooks.example.com/x", "json://localhost"]))
    assert good.notify == ("https://hooks.example.com/x", "json://localhost")
    with pytest.raises(UsageError, match=r"^--notify\[0\]: Apprise does not recognise 'ftp://"):
        serve_settings(serve_args(notify=["ftp://example.com/Secret123"]))
