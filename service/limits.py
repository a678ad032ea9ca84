"""The request body limit, counted on the wire rather than trusted from a header.

A spec is a few kilobytes; a 50 MB one was once stored, and every page that listed sweeps
then read it back. Content-Length over the limit is answered at once; a body without it
(chunked) is counted as `receive` hands it over, and the moment it passes the limit the
client gets 413 and the app sees the request end.
"""

from __future__ import annotations

from sweepctl.service.asgi import ASGIApp, Message, Receive, Scope, Send, headers_of, send_json


class BodyTooLarge(Exception):  # not a ValueError: the app's 422 handler must miss it
    """Raised into the app when the streamed body passes the limit."""


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = headers_of(scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await send_json(send, 413, self._detail())
            return
        await _Counted(self, send).run(scope, receive)

    def _detail(self) -> str:
        return f"request body over {self.max_bytes} bytes refused (serve --max-body-bytes)"


class _Counted:
    """One request: counts what the app receives, and once it has answered 413 itself,
    drops whatever the app still tries to send (FastAPI turns the error into a 400)."""

    def __init__(self, limit: BodyLimit, send: Send) -> None:
        self.limit = limit
        self.send = send
        self.received = 0
        self.started = False
        self.answered = False

    async def run(self, scope: Scope, receive: Receive) -> None:
        async def counted_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if self.received > self.limit.max_bytes:
                    await self._refuse()
                    raise BodyTooLarge(self.limit._detail())
            return message

        try:
            await self.limit.app(scope, counted_receive, self._send)
        except BodyTooLarge:
            await self._refuse()

    async def _refuse(self) -> None:
        if not self.started and not self.answered:
            self.answered = True
            await send_json(self.send, 413, self.limit._detail(), [(b"connection", b"close")])

    async def _send(self, message: Message) -> None:
        if self.answered:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)
