"""The service's doors, through the real ASGI app on a real SQLite store: the Host
allow-list (DNS rebinding), the token on every change and the login cookie, Origin rules,
the body limit, YAML alias bombs, reads off loopback, and what optuna-dashboard may do.

Every refusal must leave the store as it was and say why in one line."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import optuna
import pytest
from fastapi.testclient import TestClient

from sweepctl.service.app import create_app
from sweepctl.service.settings import ServeSettings
from sweepctl.storage import Store
from tests.service_client import AUTH, LOCAL, TOKEN, local_client
from tests.test_service_api import analytic_yaml, settings

COOKIE = "sweepctl-token-8000"
SAME_ORIGIN = {"Origin": LOCAL}


def alias_bomb() -> str:
    """Billion laughs in 435 bytes: nine levels of nine aliases each, 9**9 strings."""
    levels = "abcdefghi"
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for prev, cur in pairwise(levels):
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\nname: bomb\nmodel: *i\n"


def app_for(url: str, tmp_path: Path, **extra: Any) -> Any:
    return create_app(settings(url, tmp_path, **extra))


@pytest.fixture
def app(sqlite_url: str, tmp_path: Path) -> Iterator[Any]:
    application = app_for(sqlite_url, tmp_path)
    with local_client(application):  # runs the lifespan once
        yield application


def stored(url: str) -> list[str]:
    with Store(url) as store:
        return [s.name for s in store.sweep_rows()]


def one_line(reply: Any) -> str:
    detail = reply.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    return detail


def test_a_foreign_host_is_refused_for_reads_and_writes(app: Any, tmp_path: Path) -> None:
    evil = local_client(app, base_url="http://evil.example:8000")
    for method, path in [("GET", "/api/v1/sweeps"), ("GET", "/"), ("GET", "/dashboard")]:
        reply = evil.request(method, path)
        assert reply.status_code == 400, path
        assert "--allowed-host" in one_line(reply)
    body = {"yaml": analytic_yaml(tmp_path, "rebound")}
    assert evil.post("/api/v1/sweeps", json=body).status_code == 400
    for base in ("http://localhost:8000", "http://[::1]:8000", "http://127.0.0.1"):
        assert local_client(app, base_url=base).get("/api/v1/sweeps").status_code == 200, base


def test_allowed_hosts_and_a_specific_bind_address_are_served(
    sqlite_url: str, tmp_path: Path
) -> None:
    app = app_for(sqlite_url, tmp_path, host="10.1.2.3", allowed_hosts=("sweeps.lab",))
    for base, status in [
        ("http://sweeps.lab:8000", 200),
        ("http://10.1.2.3:8000", 200),
        ("http://sweeps.lab.evil.example", 400),
    ]:
        reply = local_client(app, base_url=base).get("/api/v1/health")
        assert reply.status_code == status, base


def test_origin_null_and_foreign_origins_cannot_change_anything(
    app: Any, sqlite_url: str, tmp_path: Path
) -> None:
    client = local_client(app)
    body = {"yaml": analytic_yaml(tmp_path, "xsrf")}
    for origin in ("null", "http://evil.example", "http://127.0.0.1:9999", "file://"):
        reply = client.post("/api/v1/sweeps", json=body, headers={"Origin": origin})
        assert reply.status_code == 403, origin
        assert "cross-origin" in one_line(reply)
    assert stored(sqlite_url) == []
    assert client.post("/api/v1/sweeps", json=body, headers=SAME_ORIGIN).status_code == 201


def test_a_change_without_the_token_is_refused_even_on_loopback(
    app: Any, sqlite_url: str, tmp_path: Path
) -> None:
    anonymous = local_client(app, token=None)
    body = {"yaml": analytic_yaml(tmp_path, "guarded")}
    reply = anonymous.post("/api/v1/sweeps", json=body)
    assert reply.status_code == 401 and "login URL" in one_line(reply)
    assert reply.headers["www-authenticate"] == "Bearer"
    wrong = anonymous.post("/api/v1/sweeps", json=body, headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 401 and one_line(wrong) == "wrong token"
    assert anonymous.get("/api/v1/sweeps").status_code == 200  # reads stay open on loopback
    assert stored(sqlite_url) == []
    created = anonymous.post("/api/v1/sweeps", json=body, headers=AUTH)
    assert created.status_code == 201
    cancel = f"/api/v1/sweeps/{created.json()['id']}/cancel"
    assert anonymous.post(cancel).status_code == 401
    assert anonymous.post(cancel, headers=AUTH).status_code == 200


def test_a_server_without_a_token_refuses_every_change(sqlite_url: str, tmp_path: Path) -> None:
    app = app_for(sqlite_url, tmp_path, token=None)
    client = local_client(app)
    reply = client.post("/api/v1/sweeps", json={"yaml": analytic_yaml(tmp_path, "none")})
    assert reply.status_code == 401 and stored(sqlite_url) == []


def test_the_login_url_sets_a_strict_cookie_and_redirects_to_the_clean_url(
    app: Any, sqlite_url: str, tmp_path: Path
) -> None:
    browser = local_client(app, token=None)
    login = browser.get(f"/launch?token={TOKEN}&tab=paste", follow_redirects=False)
    assert login.status_code == 303 and login.headers["location"] == "/launch?tab=paste"
    cookie = login.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}={TOKEN};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert browser.cookies.get(COOKIE) == TOKEN
    bad = browser.get("/?token=guess", follow_redirects=False)
    assert bad.status_code == 401 and "set-cookie" not in bad.headers
    body = {"yaml": analytic_yaml(tmp_path, "cookie")}
    # with the cookie, the Origin must be present and ours: SameSite ignores ports
    assert browser.post("/api/v1/sweeps", json=body).status_code == 403
    assert browser.post("/api/v1/sweeps", json=body, headers={"Origin": "null"}).status_code == 403
    other_port = {"Origin": "http://127.0.0.1:9999"}
    assert browser.post("/api/v1/sweeps", json=body, headers=other_port).status_code == 403
    assert stored(sqlite_url) == []
    assert browser.post("/api/v1/sweeps", json=body, headers=SAME_ORIGIN).status_code == 201
    browser.cookies.set(COOKIE, "stale")
    assert browser.post("/api/v1/sweeps", json=body, headers=SAME_ORIGIN).status_code == 401


def test_off_loopback_reads_need_the_token_too(sqlite_url: str, tmp_path: Path) -> None:
    app = app_for(sqlite_url, tmp_path, host="0.0.0.0")
    with local_client(app, token=None) as anonymous:
        for path in ("/api/v1/sweeps", "/api/v1/health", "/assets/common.js", "/dashboard"):
            reply = anonymous.get(path)
            assert reply.status_code == 401, path
            assert "needs its token for reading" in one_line(reply)
        wrong = anonymous.get("/api/v1/sweeps", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        page = anonymous.get("/sweeps/1", headers={"Accept": "text/html"})
        assert page.status_code == 401 and 'name="token"' in page.text  # the login form
        assert 'action="/sweeps/1"' in page.text
        assert anonymous.get("/api/v1/sweeps", headers=AUTH).status_code == 200
        assert anonymous.get(f"/?token={TOKEN}").status_code == 200  # now with the cookie
        assert anonymous.get("/api/v1/sweeps").status_code == 200


def test_an_oversized_body_is_refused_with_413_with_or_without_content_length(
    sqlite_url: str, tmp_path: Path
) -> None:
    app = app_for(sqlite_url, tmp_path, max_body_bytes=64 * 1024)
    client = local_client(app)
    spec = analytic_yaml(tmp_path, "huge") + "\n# " + "x" * (100 * 1024) + "\n"
    sized = client.post("/api/v1/sweeps", json={"yaml": spec})
    assert sized.status_code == 413 and "over 65536 bytes" in one_line(sized)

    def chunks() -> Iterator[bytes]:
        yield b'{"yaml": "'
        for _ in range(100):
            yield b"#" * 1024
        yield b'"}'

    streamed = client.post(
        "/api/v1/sweeps", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in {k.lower() for k in streamed.request.headers}
    assert streamed.status_code == 413 and "over 65536 bytes" in one_line(streamed)
    assert stored(sqlite_url) == []
    small = client.post("/api/v1/sweeps", json={"yaml": analytic_yaml(tmp_path, "small")})
    assert small.status_code == 201  # the limit is on size, nothing else


def test_the_default_limit_refuses_a_megabyte_spec_and_deep_json_is_refused_too(
    app: Any, sqlite_url: str, tmp_path: Path
) -> None:
    client = local_client(app)
    padded = {"yaml": analytic_yaml(tmp_path, "mega") + "#" + "x" * (1024 * 1024)}
    assert client.post("/api/v1/sweeps", json=padded).status_code == 413
    deep = '{"spec": ' + "[" * 100_000 + "]" * 100_000 + "}"
    reply = client.post(
        "/api/v1/sweeps", content=deep, headers={"Content-Type": "application/json"}
    )
    assert 400 <= reply.status_code < 500
    assert stored(sqlite_url) == []


def test_a_yaml_alias_bomb_is_refused_and_stores_nothing(app: Any, sqlite_url: str) -> None:
    """Needs the bounded spec loader (orchestrator/spec.py, branch issue8-validate)."""
    client = local_client(app)
    reply = client.post("/api/v1/sweeps", json={"yaml": alias_bomb(), "source": "bomb.yaml"})
    assert reply.status_code == 422
    assert "alias" in one_line(reply)
    assert stored(sqlite_url) == []


def _study_id(url: str, name: str) -> int:
    return optuna.storages.RDBStorage(url).get_study_id_from_name(name)


def test_optuna_dashboard_cannot_delete_or_rename_a_study_with_or_without_the_token(
    app: Any, sqlite_url: str
) -> None:
    optuna.create_study(study_name="owned", storage=sqlite_url)
    study_id = _study_id(sqlite_url, "owned")
    anonymous, client = local_client(app, token=None), local_client(app)
    for who in (anonymous, client):
        reply = who.delete(f"/api/studies/{study_id}")
        assert reply.status_code == 403 and "would corrupt the sweep" in one_line(reply)
        rename = who.post(f"/api/studies/{study_id}/rename", json={"study_name": "x"})
        assert rename.status_code == 403
    assert _study_id(sqlite_url, "owned") == study_id
    note = {"version": 1, "body": "looks good"}
    assert anonymous.put(f"/api/studies/{study_id}/note", json=note).status_code == 401
    assert client.put(f"/api/studies/{study_id}/note", json=note).status_code == 204
    assert anonymous.post("/api/studies", json={"study_name": "x"}).status_code == 401


def test_the_sweeps_list_reads_no_spec(app: Any, sqlite_url: str, tmp_path: Path) -> None:
    """`sweep_rows` defers the spec with raiseload: touching it would raise, not load."""
    client = local_client(app)
    assert client.post("/api/v1/sweeps", json={"yaml": analytic_yaml(tmp_path, "l")}).is_success
    with Store(sqlite_url) as store:
        (row,) = store.sweep_rows()
        assert not hasattr(row, "spec") and row.name == "l"
        (queued,) = store.sweep_queue("server")
        assert (queued.name, queued.state.name) == ("l", "PENDING")
        assert store.sweep_queue("someone-else") == []
    listed = client.get("/api/v1/sweeps").json()
    assert [(s["planned"]) for s in listed[0]["stages"]] == [7, 4]
    assert client.get("/").status_code == 200


def test_settings_name_the_hosts_a_request_may_carry() -> None:
    names = ServeSettings(db_url="sqlite://", home="/", host="::", allowed_hosts=("a.lab",))
    assert names.host_names == {"127.0.0.1", "localhost", "[::1]", "::1", "a.lab"}
    bound = ServeSettings(db_url="sqlite://", home="/", host="fd00::5")
    assert "[fd00::5]" in bound.host_names and bound.reads_need_token


def test_a_testclient_without_the_local_host_is_refused(app: Any) -> None:
    assert TestClient(app).get("/api/v1/sweeps").status_code == 400  # Host: testserver
