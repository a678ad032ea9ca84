"""The guard on every request that changes state (launch, cancel, and the mounted
optuna-dashboard's own writes).

Pure ASGI middleware rather than a FastAPI dependency so it also covers mounted apps.
Two rules for any method other than GET/HEAD/OPTIONS:

- with a token configured (always, off loopback) the request needs
  ``Authorization: Bearer <SWEEPCTL_TOKEN>``, compared in constant time;
- a request whose ``Origin`` is another site is refused, so a web page open in the same
  browser cannot post to a loopback server that has no token (cross-site request forgery).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class WriteGuard:
    def __init__(self, app: ASGIApp, token: str | None, token_required: bool) -> None:
        self.app = app
        self.token = token
        self.token_required = token_required

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            refusal = self.refusal(_headers(scope))
            if refusal is not None:
                await _send_json(send, *refusal)
                return
        await self.app(scope, receive, send)

    def refusal(self, headers: dict[str, str]) -> tuple[int, str] | None:
        origin = headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != headers.get("host"):
            return 403, f"cross-origin request from {origin} refused"
        if not self.token_required:
            return None
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if self.token is None or scheme.lower() != "bearer":
            return 401, "this server needs 'Authorization: Bearer <SWEEPCTL_TOKEN>' for changes"
        if not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            return 401, "wrong token"
        return None


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
