"""The Host allow-list: the defence against DNS rebinding.

A page on evil.example can make its own name resolve to 127.0.0.1 and then talk to a
loopback server from the browser as a same-origin page; the only trace left is the Host
header, which still says evil.example. So every request (reads too, and the mounted
optuna-dashboard) must name this server: a loopback name, the bind address, or a name
given with `--allowed-host`.
"""

from __future__ import annotations

from sweepctl.service.asgi import ASGIApp, Receive, Scope, Send, headers_of, send_json


def host_name(header: str) -> str:
    """The Host header without its port, lower-case; IPv6 addresses keep their brackets."""
    value = header.strip().lower()
    if value.startswith("["):
        return value.partition("]")[0] + "]"
    name, _, port = value.rpartition(":")
    return name if name and port.isdigit() else value


class HostGuard:
    def __init__(self, app: ASGIApp, allowed: frozenset[str]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            header = headers_of(scope).get("host", "")
            if host_name(header) not in self.allowed:
                shown = header[:100] or "(none)"
                detail = (
                    f"Host {shown!r} is not allowed; "
                    "start 'sweepctl serve' with --allowed-host NAME to serve it under NAME"
                )
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await send_json(send, 400, detail)
                return
        await self.app(scope, receive, send)
