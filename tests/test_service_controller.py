"""The server's controller: queued sweeps run in order within the limit, a sweep outlives
the CLI that submitted it and the server that ran it (resumed on the next start), cancel
through the API stops it, and a sweep that cannot run ends FAILED with the reason."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sweepctl.orchestrator.sweep import CANCEL_REASON, CRASH_REASON
from sweepctl.service.app import create_app
from sweepctl.service.settings import ServeSettings
from sweepctl.storage import Store, SweepState, TrialState
from tests.conftest import REPO
from tests.service_client import TOKEN, local_client
from tests.service_process import running_server, server_env
from tests.test_strategies import ANALYTIC
from tests.test_sweep_lifecycle import write_analytic_spec


def controller_settings(url: str, tmp_path: Path, **extra: Any) -> ServeSettings:
    """Trials inline by default, and a controller that looks for work every 0.1 s."""
    options: dict[str, Any] = {"backend": "inline", "runner": ANALYTIC, "poll_seconds": 0.1}
    options["token"] = TOKEN
    return ServeSettings(db_url=url, home=str(tmp_path / "home"), **{**options, **extra})


@pytest.fixture
def serve(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The app with its controller running sweeps inline, trial steps slowed down."""
    monkeypatch.setenv("SWEEPCTL_REPLAY_STEP_SECONDS", "0.05")
    with local_client(create_app(controller_settings(sqlite_url, tmp_path))) as client:
        yield client


def submit(client: TestClient, tmp_path: Path, name: str) -> int:
    reply = client.post(
        "/api/v1/sweeps", json={"yaml": write_analytic_spec(tmp_path, name).read_text()}
    )
    assert reply.status_code == 201, reply.text
    return int(reply.json()["id"])


def wait_for(check: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def sweep_state(url: str, name: str) -> SweepState:
    with Store(url) as store:
        return store.get_sweep(name).state


def test_queued_sweeps_run_oldest_first_one_at_a_time(
    serve: TestClient, sqlite_url: str, tmp_path: Path
) -> None:
    submit(serve, tmp_path, "first")
    submit(serve, tmp_path, "second")
    wait_for(lambda: sweep_state(sqlite_url, "second") is SweepState.COMPLETED, "both sweeps")
    with Store(sqlite_url) as store:
        first, second = store.list_trials("first"), store.list_trials("second")
    assert len(first) == len(second) == 11
    assert all(t.state is TrialState.COMPLETED for t in first + second)
    # max_concurrent_sweeps is 1: the second sweep's first trial waited for the first sweep
    assert max(t.finished_at for t in first) <= min(t.started_at for t in second)
    assert serve.get("/api/v1/health").json()["running_sweeps"] == []


def test_cancel_through_the_api_stops_a_running_sweep(
    serve: TestClient, sqlite_url: str, tmp_path: Path
) -> None:
    sweep_id = submit(serve, tmp_path, "stopme")

    def running() -> bool:
        with Store(sqlite_url) as store:
            return any(t.state is TrialState.RUNNING for t in store.list_trials("stopme"))

    wait_for(running, "a running trial")
    assert serve.post(f"/api/v1/sweeps/{sweep_id}/cancel").status_code == 200
    controller = serve.app.state.controller  # type: ignore[attr-defined]
    wait_for(lambda: controller.running == [], "the sweep's thread to stop")
    with Store(sqlite_url) as store:
        sweep, trials = store.get_sweep("stopme"), store.list_trials("stopme")
    assert sweep.state is SweepState.CANCELLED
    assert not any(t.state in (TrialState.RUNNING, TrialState.PENDING) for t in trials)
    cancelled = [t for t in trials if t.state is TrialState.CANCELLED]
    assert cancelled and all(t.error == CANCEL_REASON for t in cancelled)
    assert len(trials) < 11

    assert serve.post(f"/api/v1/sweeps/{sweep_id}/resume").json()["state"] == "RUNNING"
    wait_for(lambda: sweep_state(sqlite_url, "stopme") is SweepState.COMPLETED, "the resume")
    assert len(completed(sqlite_url, "stopme")) == 11  # the cancelled points ran again
    again = serve.post(f"/api/v1/sweeps/{sweep_id}/resume")
    assert again.status_code == 409 and "COMPLETED" in again.json()["detail"]


def test_a_terminal_sweep_is_not_resumed_by_the_server(serve: TestClient, sqlite_url: str) -> None:
    with Store(sqlite_url) as store:
        sweep_id = store.create_sweep("mine", {"name": "mine"}, [("screen", "ofat")])
        store.set_sweep_state("mine", SweepState.RUNNING)
        store.set_sweep_state("mine", SweepState.FAILED, error="killed")
    reply = serve.post(f"/api/v1/sweeps/{sweep_id}/resume")
    assert reply.status_code == 409 and "sweepctl resume" in reply.json()["detail"]
    assert sweep_state(sqlite_url, "mine") is SweepState.FAILED


def test_a_sweep_that_cannot_run_ends_failed_with_the_reason(
    serve: TestClient, sqlite_url: str
) -> None:
    with Store(sqlite_url) as store:  # a spec an older sweepctl might have stored
        store.create_sweep("broken", {"name": "broken"}, [("screen", "ofat")], controller="server")
    wait_for(lambda: sweep_state(sqlite_url, "broken") is SweepState.FAILED, "the failure")
    with Store(sqlite_url) as store:
        error = store.get_sweep("broken").error
    assert error is not None and error.startswith("ValidationError:") and "\n" not in error


def launch_with_server(spec: Path, server_url: str, home: Path) -> subprocess.CompletedProcess[str]:
    cli = (sys.executable, "-m", "sweepctl")
    command = [*cli, "launch", str(spec), "--server", server_url, "--runner", ANALYTIC]
    return subprocess.run(
        command, cwd=REPO, env=server_env(home, 0.2), capture_output=True, text=True, timeout=120
    )


def completed(url: str, name: str) -> dict[int, Any]:
    with Store(url) as store:
        return {
            t.id: t.objective for t in store.list_trials(name) if t.state is TrialState.COMPLETED
        }


def test_a_sweep_outlives_the_cli_and_a_killed_server(sqlite_url: str, tmp_path: Path) -> None:
    """launch --server returns at once; the server is SIGKILLed mid-sweep; the next server
    resumes the sweep it owned and leaves a terminal's sweep alone."""
    with Store(sqlite_url) as store:  # a sweep some terminal is running against the same DB
        store.create_sweep("terminal", {"name": "terminal"}, [("screen", "ofat")])
        store.set_sweep_state("terminal", SweepState.RUNNING)
    spec = write_analytic_spec(tmp_path, "durable")
    with running_server(tmp_path, sqlite_url) as server:
        cli = launch_with_server(spec, server.url, tmp_path / "home")
        assert cli.returncode == 0, cli.stderr
        assert "submitted sweep durable" in cli.stdout
        server.wait_until(lambda: len(completed(sqlite_url, "durable")) >= 3, what="3 trials")
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=30)
    before = completed(sqlite_url, "durable")
    assert sweep_state(sqlite_url, "durable") is SweepState.RUNNING
    with running_server(tmp_path, sqlite_url, step_seconds=0.02) as server:
        server.wait_until(
            lambda: sweep_state(sqlite_url, "durable") is SweepState.COMPLETED, what="the resume"
        )
    with Store(sqlite_url) as store:
        trials = store.list_trials("durable")
        assert store.get_sweep("terminal").state is SweepState.RUNNING  # not ours: untouched
    after = {t.id: t.objective for t in trials if t.state is TrialState.COMPLETED}
    assert all(after[i] == v for i, v in before.items())  # nothing completed was lost
    screen = [t for t in trials if t.stage == "screen" and t.state is TrialState.COMPLETED]
    assert set(Counter(tuple(sorted(t.params.items())) for t in screen).values()) == {1}
    assert len(screen) == 7 and len(after) == 11
    assert not [t for t in trials if t.state is TrialState.FAILED]
    assert all(t.error == CRASH_REASON for t in trials if t.state is TrialState.CANCELLED)


def test_a_sweep_that_cannot_reach_ray_fails_with_the_reason_and_the_next_one_is_tried(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A `ray://` address needs the ray[client] extra, which is not installed: Ray refuses
    at once. Each sweep ends FAILED with Ray's message; the controller goes on."""
    settings = controller_settings(
        sqlite_url, tmp_path, backend="ray", ray_address="ray://head.invalid:10001"
    )
    with local_client(create_app(settings)) as client:
        submit(client, tmp_path, "one")
        wait_for(lambda: sweep_state(sqlite_url, "one") is SweepState.FAILED, "the failure")
        submit(client, tmp_path, "two")
        wait_for(lambda: sweep_state(sqlite_url, "two") is SweepState.FAILED, "the next one")
    with Store(sqlite_url) as store:
        errors = {name: store.get_sweep(name).error for name in ("one", "two")}
        assert store.list_trials("one") == []
    assert all(e is not None and e.startswith("ValueError: Ray Client") for e in errors.values())
