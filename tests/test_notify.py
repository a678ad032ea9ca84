"""Sweep-end notifications (orchestrator.notify) to a local HTTP receiver this test starts:
the webhook's JSON POST, Apprise's json:// to the same receiver, a dead receiver that
does not fail the sweep, and secrets that are never stored."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweepctl.cli import main
from sweepctl.spec.overnight import NotifySpec, redact_url
from sweepctl.storage import Store
from tests.failing_runner import RUNNER as FAILING
from tests.fault_helpers import ANALYTIC, analytic_grid_spec


class Receiver:
    """Every POST it got, as (path, parsed JSON body)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, Any]] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append((self.path, json.loads(body or b"null")))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.thread.start()
    yield found
    found.server.shutdown()
    found.server.server_close()


def _launch(
    tmp_path: Path, name: str, notify: dict[str, Any], runner: str = ANALYTIC, **extra: Any
) -> tuple[int, str]:
    path = analytic_grid_spec(tmp_path / f"{name}.yaml", name, points=2, notify=notify, **extra)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    return main(["launch", str(path), "--db", url, "--backend", "inline", "--runner", runner]), url


def test_the_webhook_receives_the_sweep_s_end_as_json(
    tmp_path: Path, home: Path, receiver: Receiver
) -> None:
    code, _ = _launch(tmp_path, "hooked", {"webhook": receiver.url("/hook")})
    assert code == 0
    ((path, body),) = receiver.posts
    assert path == "/hook"
    assert (body["sweep"], body["event"], body["state"]) == ("hooked", "completed", "COMPLETED")
    assert body["counts"] == {"completed": 2} and body["reason"] is None
    assert body["best"]["metric"] == "loss" and body["best"]["params"]["learning_rate"] == 2e-5
    assert body["elapsed_s"] > 0 and body["dashboard"] is None


def test_apprise_json_urls_reach_the_same_receiver(
    tmp_path: Path, home: Path, receiver: Receiver
) -> None:
    target = f"json://127.0.0.1:{receiver.port}/apprise"
    code, _ = _launch(tmp_path, "chat", {"apprise": [target]})
    assert code == 0
    ((path, body),) = receiver.posts
    assert path == "/apprise"
    assert body["title"] == "sweepctl: sweep chat COMPLETED"
    assert "sweep chat: COMPLETED" in body["message"] and "trials: completed 2" in body["message"]


def test_a_dead_receiver_is_retried_logged_and_never_fails_the_sweep(
    tmp_path: Path, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/hook"
    with caplog.at_level(logging.WARNING, logger="sweepctl.notify"):
        code, url = _launch(tmp_path, "deaf", {"webhook": dead})
    assert code == 0
    messages = [r.getMessage() for r in caplog.records]
    attempts = [m for m in messages if m.startswith(f"notify {dead}: attempt")]
    assert [m.split(": ")[1] for m in attempts] == [f"attempt {n} of 3 failed" for n in (1, 2, 3)]
    with Store(url) as store:
        assert store.get_sweep("deaf").state.value == "COMPLETED"


def test_only_the_events_in_on_are_sent(tmp_path: Path, home: Path, receiver: Receiver) -> None:
    code, _ = _launch(tmp_path, "quiet", {"webhook": receiver.url("/hook"), "on": ["failed"]})
    assert code == 0 and receiver.posts == []


def test_a_stopped_sweep_says_why_and_a_secret_url_is_never_stored(
    tmp_path: Path, home: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    secret = receiver.url("/hooks/T0AB12CD/B0EF34GH56?token=hunter2")
    notify = {"webhook": secret, "on": ["stopped", "failed"]}
    code, url = _launch(tmp_path, "secret", notify, FAILING, budget={"max_failures": 1})
    assert code == 1
    ((_, body),) = receiver.posts
    assert body["event"] == "stopped" and body["reason"].startswith("budget max_failures used up")
    with Store(url) as store:
        stored = json.dumps(store.get_sweep("secret").spec)
        configs = json.dumps([t.config for t in store.list_trials("secret")])
    assert redact_url(secret) in stored
    assert "hunter2" not in stored + configs and "T0AB12CD" not in stored + configs

    # resumed from the store, the literal secret is gone: skipped with a warning, not sent
    with caplog.at_level(logging.WARNING, logger="sweepctl.notify"):
        command = ["resume", "secret", "--db", url, "--backend", "inline", "--runner", FAILING]
        assert main(command) == 1
    assert len(receiver.posts) == 1
    assert any("its secret was not kept in the store" in r.getMessage() for r in caplog.records)


def test_an_environment_reference_is_stored_as_written_and_expanded_when_sent(
    tmp_path: Path, home: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWEEP_HOOK", receiver.url("/from-env"))
    code, url = _launch(tmp_path, "envref", {"webhook": "${SWEEP_HOOK}"})
    assert code == 0
    assert [path for path, _ in receiver.posts] == ["/from-env"]
    with Store(url) as store:
        assert store.get_sweep("envref").spec["notify"]["webhook"] == "${SWEEP_HOOK}"


def test_notify_urls_are_checked_and_shown_redacted() -> None:
    with pytest.raises(ValueError, match="expected an http:// or https:// URL"):
        NotifySpec(webhook="ftp://example.com/x")
    with pytest.raises(ValueError, match="expected an Apprise URL"):
        NotifySpec(apprise=["not a url"])
    assert redact_url("https://hooks.slack.com/services/T0000000/B0000000/XXXXXXXXXXXX") == (
        "https://hooks.slack.com/services/***/***/***"
    )
    assert redact_url("mailtos://me:pa55word@smtp.example.com?to=a@b.c") == (
        "mailtos://me:***@smtp.example.com?to=***"
    )
    telegram = "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/12345"
    assert redact_url(telegram) == "tgram://***:***/12345"  # the bot token is the "host"
    assert yaml.safe_dump({"url": redact_url("json://localhost:8080/path")}).strip() == (
        "url: json://localhost:8080/path"
    )


def test_serve_notify_is_the_default_target_and_links_to_the_server_s_dashboard(
    tmp_path: Path, sqlite_url: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sweepctl.service.app import create_app
    from tests.service_client import local_client
    from tests.test_service_controller import controller_settings, submit, wait_for

    monkeypatch.setenv("SWEEPCTL_REPLAY_STEP_SECONDS", "0.05")
    settings = controller_settings(sqlite_url, tmp_path, notify=(receiver.url("/serve"),))
    with local_client(create_app(settings)) as client:
        sweep_id = submit(client, tmp_path, "served")
        wait_for(lambda: bool(receiver.posts), "the server's notification")
    ((path, body),) = receiver.posts
    assert path == "/serve" and (body["sweep"], body["state"]) == ("served", "COMPLETED")
    assert body["dashboard"] == f"http://127.0.0.1:8000/sweeps/{sweep_id}"


def test_a_trial_hours_budget_stops_the_sweep_once_the_trials_have_used_it(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    monkeypatch.setenv("SWEEPCTL_REPLAY_STEP_SECONDS", "0.2")  # 4 evaluations: 0.8 s a trial
    budget = {"max_trial_hours": 0.0003}  # 1.08 s: used up during the second of five trials
    path = analytic_grid_spec(
        tmp_path / "hours.yaml", "hours", points=5, budget=budget,
        notify={"webhook": receiver.url("/hook")},
    )  # fmt: skip
    url = f"sqlite:///{tmp_path / 'store.db'}"
    code = main(["launch", str(path), "--db", url, "--backend", "inline", "--runner", ANALYTIC])
    assert code == 1
    with Store(url) as store:
        sweep = store.get_sweep("hours")
        completed = [t for t in store.list_trials("hours") if t.state.value == "COMPLETED"]
    assert sweep.state.value == "STOPPED" and len(completed) == 2
    assert sweep.error.startswith("budget max_trial_hours used up: ")
    assert [body["event"] for _, body in receiver.posts] == ["stopped"]


def test_an_apprise_url_apprise_cannot_send_to_is_refused_at_launch_naming_it(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, url = _launch(tmp_path, "typo", {"apprise": ["slak://T0AB12CD/B0EF34GH56"]})
    assert code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.endswith(
        "notify.apprise[0]: Apprise does not recognise 'slak://***/***'; expected a URL "
        "such as slack://..., mailto://..., json://host/path"
    ), line
    with Store(url) as store:
        assert store.list_sweeps() == []
    assert main(["validate", str(tmp_path / "typo.yaml")]) == 2  # validate says the same
    assert "notify.apprise[0]: Apprise does not recognise" in capsys.readouterr().err


def test_an_unquoted_on_key_in_a_spec_file_is_the_key_on_not_true(tmp_path: Path) -> None:
    from sweepctl.spec.models import load_spec

    path = analytic_grid_spec(tmp_path / "on.yaml", "on")
    text = path.read_text() + "notify:\n  webhook: https://example.com/x\n  on: [failed]\n"
    path.write_text(text)
    assert load_spec(str(path)).notify.on == ["failed"]  # YAML 1.1 would make the key True
