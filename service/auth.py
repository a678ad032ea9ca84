"""The token and Origin rules, on every request (the mounted optuna-dashboard's too).

- Every change (any method but GET/HEAD/OPTIONS) needs the server's token, on loopback
  as well (see service/token.py): `Authorization: Bearer <token>`, or the login cookie.
- Off loopback every read needs it too; on loopback reads stay open.
- A change whose `Origin` is another site, or `null` (a sandboxed iframe, a data: URL), is
  refused; a change carried by the cookie must also *have* an Origin, this server's. The
  cookie is SameSite=Strict, but SameSite ignores ports: another app on localhost:9999 is
  "same site", so the Origin check is what keeps it from posting with our cookie.
- `GET ...?token=T` with the right token sets the cookie (HttpOnly, SameSite=Strict) and
  redirects to the same URL without the token: the login URL `serve` prints.
"""

from __future__ import annotations

import hmac
import html
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from sweepctl.service.asgi import ASGIApp, Receive, Scope, Send, headers_of, send_json
from sweepctl.service.optuna_mount import mount_refusal

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_HINT = "open the login URL 'sweepctl serve' printed, or send 'Authorization: Bearer <token>'"


@dataclass(frozen=True)
class TokenRules:
    token: str | None
    reads_need_token: bool
    cookie_name: str


class TokenGuard:
    def __init__(self, app: ASGIApp, rules: TokenRules) -> None:
        self.app = app
        self.rules = rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and not self._may_read(headers_of(scope)):
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = headers_of(scope)
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        if scope["method"] in ("GET", "HEAD") and any(k == "token" for k, _ in query):
            await self._login(scope, send, query)
            return
        refusal = self.refusal(scope["method"], scope["path"], headers)
        if refusal is None:
            await self.app(scope, receive, send)
        elif refusal[0] == 401 and self.rules.reads_need_token and _wants_html(headers):
            await send_json(send, 401, refusal[1], body=_login_page(scope["path"]))
        else:
            await send_json(send, *refusal, _www_authenticate(refusal[0]))

    def refusal(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, str] | None:
        if method in SAFE_METHODS:
            if not self._may_read(headers):
                return 401, f"this server needs its token for reading: {LOGIN_HINT}"
            return None
        credential = self._credential(headers)
        rule = mount_refusal(method, path)
        if rule is not None:
            return 403, rule
        origin = headers.get("origin")
        if origin is not None and not _same_origin(origin, headers.get("host", "")):
            return 403, f"cross-origin request from {origin[:100]} refused"
        if credential == "wrong":
            return 401, "wrong token"
        if credential is None:
            return 401, f"this server needs its token for changes: {LOGIN_HINT}"
        if credential == "cookie" and origin is None:
            return 403, "a change carried by the login cookie must come from this server's pages"
        return None

    def _may_read(self, headers: dict[str, str]) -> bool:
        """On loopback anyone may; off loopback only with the right token."""
        if not self.rules.reads_need_token:
            return True
        return self._credential(headers) in ("bearer", "cookie")

    def _credential(self, headers: dict[str, str]) -> str | None:
        """'bearer' or 'cookie' when one carries the right token, 'wrong' for a wrong
        bearer token, None without one. A stale cookie (the token changed) counts as none."""
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            return "bearer" if self._matches(given.strip()) else "wrong"
        cookie = _cookie(headers.get("cookie", ""), self.rules.cookie_name)
        return "cookie" if cookie is not None and self._matches(cookie) else None

    def _matches(self, given: str) -> bool:
        token = self.rules.token
        return token is not None and hmac.compare_digest(given.encode(), token.encode())

    async def _login(self, scope: Scope, send: Send, query: list[tuple[str, str]]) -> None:
        given = next(v for k, v in query if k == "token")
        if not self._matches(given):
            await send_json(send, 401, "wrong token", _www_authenticate(401))
            return
        rest = urlencode([(k, v) for k, v in query if k != "token"])
        location = scope["path"] + (f"?{rest}" if rest else "")
        cookie = f"{self.rules.cookie_name}={given}; Path=/; HttpOnly; SameSite=Strict"
        extra = [(b"location", location.encode("latin-1")), (b"set-cookie", cookie.encode())]
        await send_json(send, 303, "logged in", extra)


def _same_origin(origin: str, host: str) -> bool:
    """`null` is never this server; otherwise scheme://host:port must be ours."""
    if origin == "null":
        return False
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value.strip().strip('"')
    return None


def _wants_html(headers: dict[str, str]) -> bool:
    return "text/html" in headers.get("accept", "")


def _www_authenticate(status: int) -> list[tuple[bytes, bytes]]:
    return [(b"www-authenticate", b"Bearer")] if status == 401 else []


def _login_page(path: str) -> bytes:
    """The one page served without the token off loopback: a form that GETs ?token=."""
    action = html.escape(path, quote=True)
    return (
        "<!doctype html><meta charset=utf-8><title>sweepctl · token</title>"
        "<p>This sweepctl server needs its token. Open the login URL that "
        "<code>sweepctl serve</code> printed, or enter the token:</p>"
        f'<form method="get" action="{action}"><input type="password" name="token" '
        'autocomplete="off" autofocus> <button type="submit">Log in</button></form>'
    ).encode()
