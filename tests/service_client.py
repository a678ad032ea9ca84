"""An in-process client that reaches the app as a local user would: Host 127.0.0.1:8000
(the Host allow-list refuses Starlette's default `testserver`) and the server's token."""

from __future__ import annotations

from fastapi.testclient import TestClient
from starlette.types import ASGIApp

LOCAL = "http://127.0.0.1:8000"
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def local_client(app: ASGIApp, token: str | None = TOKEN, base_url: str = LOCAL) -> TestClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return TestClient(app, base_url=base_url, headers=headers)
