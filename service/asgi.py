"""What sweepctl's pure ASGI middlewares share: the types and a one-line JSON answer.

The doors (Host allow-list, token and Origin rules, body limit) are ASGI middleware rather
than FastAPI dependencies because optuna-dashboard is mounted at the root as a WSGI app
and must sit behind exactly the same rules.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = Sequence[tuple[bytes, bytes]]


def headers_of(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


async def send_json(
    send: Send, status: int, detail: str, extra: Headers = (), body: bytes | None = None
) -> None:
    """`{"detail": "..."}` (one line), or `body` as HTML when given."""
    if body is None:
        body = json.dumps({"detail": detail}).encode()
        kind = b"application/json"
    else:
        kind = b"text/html; charset=utf-8"
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
