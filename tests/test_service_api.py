"""The REST API of `sweepctl serve` through its ASGI app, on a real SQLite store:
submission with the CLI's checks and messages, cancel, export downloads, the write guard
and what responses must never contain. The doors themselves (Host, token, Origin, body
limit) are tests/test_service_doors.py's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from sweepctl.cli import main
from sweepctl.service.app import create_app
from sweepctl.service.settings import ServeSettings, is_loopback
from sweepctl.spec.models import parse_spec_text
from sweepctl.storage import Store, SweepState
from tests.service_client import TOKEN, local_client
from tests.test_strategies import ANALYTIC
from tests.test_sweep_lifecycle import STAGES, write_analytic_spec

pytest_plugins = ["tests.storage_backends"]


def settings(url: str, tmp_path: Path, **extra: Any) -> ServeSettings:
    options: dict[str, Any] = {"runner": ANALYTIC, "run_controller": False, "token": TOKEN}
    options.update(extra)
    return ServeSettings(db_url=url, home=str(tmp_path / "home"), **options)


@pytest.fixture
def client(sqlite_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with local_client(create_app(settings(sqlite_url, tmp_path))) as test_client:
        yield test_client


def analytic_yaml(tmp_path: Path, name: str) -> str:
    return write_analytic_spec(tmp_path, name).read_text()


def test_a_valid_submission_is_queued_for_the_server(
    client: TestClient, sqlite_url: str, tmp_path: Path
) -> None:
    reply = client.post("/api/v1/sweeps", json={"yaml": analytic_yaml(tmp_path, "queued")})
    assert reply.status_code == 201, reply.text
    body = reply.json()
    assert body["name"] == "queued" and body["url"] == f"/sweeps/{body['id']}"
    with Store(sqlite_url) as store:
        sweep = store.get_sweep("queued")
    assert (sweep.state, sweep.controller) == (SweepState.PENDING, "server")
    assert [s.name for s in sweep.stages] == [s["name"] for s in STAGES]
    listed = client.get("/api/v1/sweeps").json()
    assert [(s["name"], s["state"]) for s in listed] == [("queued", "PENDING")]
    assert [(s["name"], s["planned"]) for s in listed[0]["stages"]] == [
        ("screen", 7),  # baseline + 2 values of each of the 3 parameters
        ("bayes", 4),
    ]
    again = client.post("/api/v1/sweeps", json={"yaml": analytic_yaml(tmp_path, "queued")})
    assert again.status_code == 409 and "already exists" in again.json()["detail"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.pop("model"), "pasted.yaml: model: required key is missing"),
        (lambda s: s.update(stages=[]), "pasted.yaml: stages: launch needs at least one stage"),
        (
            lambda s: s["search_space"]["learning_rate"].update(low="fast"),
            "pasted.yaml: search_space.learning_rate",
        ),
    ],
)
def test_a_bad_spec_gets_the_cli_message_and_writes_nothing(
    client: TestClient, sqlite_url: str, tmp_path: Path, edit: Any, message: str
) -> None:
    spec = yaml.safe_load(analytic_yaml(tmp_path, "bad"))
    edit(spec)
    reply = client.post(
        "/api/v1/sweeps", json={"yaml": yaml.safe_dump(spec), "source": "pasted.yaml"}
    )
    assert reply.status_code == 422
    detail = reply.json()["detail"]
    assert detail.startswith(message) and "\n" not in detail
    with Store(sqlite_url) as store:
        assert store.list_sweeps() == []


def test_a_missing_data_file_is_refused_like_the_cli_does(
    sqlite_url: str, tmp_path: Path, tiny_spec: dict[str, Any]
) -> None:
    spec = {
        **tiny_spec,
        "search_space": {"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3}},
    }
    spec["stages"] = [{"name": "random", "strategy": "random", "n_trials": 2}]
    spec["dataset"] = {**spec["dataset"], "data_files": {"train": str(tmp_path / "nope.csv")}}
    app = create_app(settings(sqlite_url, tmp_path, runner="transformer"))
    with local_client(app) as client:
        reply = client.post("/api/v1/sweeps", json={"spec": spec})
        assert reply.status_code == 422
        assert reply.json()["detail"] == (
            f"dataset.data_files.train: file not found: {tmp_path / 'nope.csv'}"
        )
        bad_yaml = client.post("/api/v1/sweeps", json={"yaml": "name: [unclosed"})
        assert bad_yaml.status_code == 422 and "invalid YAML" in bad_yaml.json()["detail"]
        both = client.post("/api/v1/sweeps", json={"yaml": "a: 1", "spec": {}})
        assert both.status_code == 422
    with Store(sqlite_url) as store:
        assert store.list_sweeps() == []


def test_cancel_a_queued_sweep_and_not_a_finished_one(
    client: TestClient, sqlite_url: str, tmp_path: Path
) -> None:
    sweep_id = client.post("/api/v1/sweeps", json={"yaml": analytic_yaml(tmp_path, "c")}).json()[
        "id"
    ]
    reply = client.post(f"/api/v1/sweeps/{sweep_id}/cancel")
    assert reply.json() == {"id": sweep_id, "state": "CANCELLED", "stopped_trials": 0}
    with Store(sqlite_url) as store:
        assert store.get_sweep("c").state is SweepState.CANCELLED
    again = client.post(f"/api/v1/sweeps/{sweep_id}/cancel")
    assert again.status_code == 409 and "CANCELLED" in again.json()["detail"]
    assert client.post("/api/v1/sweeps/999/cancel").status_code == 404


def test_export_downloads_reproduce_the_cli_export(
    sqlite_url: str, tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_analytic_spec(tmp_path, "done")
    assert (
        main(["launch", str(spec), "--db", sqlite_url, "--backend", "inline", "--runner", ANALYTIC])
        == 0
    )
    assert main(["export", "done", "--db", sqlite_url, "--format", "yaml"]) == 0
    cli_yaml = capsys.readouterr().out.split("sweep done: COMPLETED")[-1]
    with local_client(create_app(settings(sqlite_url, tmp_path))) as client:
        sweep_id = client.get("/api/v1/sweeps").json()[0]["id"]
        reply = client.get(f"/api/v1/sweeps/{sweep_id}/export", params={"format": "yaml"})
        assert reply.status_code == 200
        assert reply.headers["content-disposition"] == 'attachment; filename="done-best.yaml"'
        assert reply.text.strip() in cli_yaml
        exported = parse_spec_text(reply.text, "download", tmp_path)
        assert exported.name == "done-best" and not exported.stages
        args = client.get(f"/api/v1/sweeps/{sweep_id}/export", params={"format": "hf-args"})
        assert json.loads(args.text)["learning_rate"] == exported.training["learning_rate"]
        csv_text = client.get(f"/api/v1/sweeps/{sweep_id}/export", params={"format": "csv"}).text
        assert csv_text.splitlines()[0].startswith("trial_id,number,optuna_trial_number,stage")
        assert len(csv_text.splitlines()) == 1 + 11  # header + 7 OFAT + 4 TPE trials
        assert client.get(f"/api/v1/sweeps/{sweep_id}/export?format=xml").status_code == 422
        overview = client.get(f"/api/v1/sweeps/{sweep_id}").json()
        assert overview["state"] == "COMPLETED" and overview["best"]["state"] == "COMPLETED"
        assert [(s["done"], s["planned"]) for s in overview["stages"]] == [(7, 7), (4, 4)]


def test_responses_never_carry_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str
) -> None:
    """A database password in the URL and the W&B key in the environment stay out of every
    response; PostgreSQL here trusts local connections, so any password works."""
    monkeypatch.setenv("WANDB_API_KEY", "wandb-key-0123456789")
    url = pg_url.replace("postgres@", "postgres:hunter2@", 1)
    assert "hunter2" in url
    with local_client(create_app(settings(url, tmp_path))) as client:
        client.post("/api/v1/sweeps", json={"yaml": analytic_yaml(tmp_path, "secret")})
        sweep_id = client.get("/api/v1/sweeps").json()[0]["id"]
        paths = [
            "/api/v1/health",
            "/api/v1/sweeps",
            f"/api/v1/sweeps/{sweep_id}",
            "/api/v1/openapi.json",
        ]
        for path in paths:
            text = client.get(path).text
            assert "hunter2" not in text and "wandb-key" not in text, path
        assert "***" in client.get("/api/v1/health").json()["database"]


def test_loopback_is_always_a_loopback_name() -> None:
    assert [
        is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "example.org")
    ] == [True, True, True, False, False]


def test_the_openapi_schema_lists_the_api(client: TestClient) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert {
        "/api/v1/sweeps",
        "/api/v1/sweeps/{sweep_id}/cancel",
        "/api/v1/sweeps/{sweep_id}/export",
    } <= set(paths)
