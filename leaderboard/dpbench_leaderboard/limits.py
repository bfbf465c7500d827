"""ASGI middleware: a streamed request-size limit and the security headers of every response."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: No inline script or style, nothing from another origin, no framing; images may be data: URLs only besides ours.
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def _too_large(limit: int) -> str:
    return f"request body over the limit of {limit} bytes; submit results with fewer or shorter predictions"


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
        (b"connection", b"close"), *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": data})


class BodyLimit:
    """Refuse a body over ``limit`` bytes: at once when Content-Length says so, else as soon as the streamed
    (e.g. chunked) bytes pass it, before the application has buffered more than ``limit``."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = [v for k, v in scope["headers"] if k == b"content-length"]
        if declared:
            try:
                size = int(declared[0])
            except ValueError:
                await _send_json(send, 400, {"error": "invalid Content-Length header", "code": "bad_request"})
                return
            if size > self.limit:
                await _send_json(send, 413, {"error": _too_large(self.limit), "code": "too_large"})
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    await self._drain(receive, message)
                    raise HTTPException(413, _too_large(self.limit), headers={"Connection": "close"})
            return message

        await self.app(scope, limited, send)


    async def _drain(self, receive: Receive, message: Message) -> None:
        """Read and discard what is left of an oversized body (at most ``limit`` more bytes, for at most a second):
        closing with unread bytes would reset the connection and the client would never see its 413."""
        loop = asyncio.get_running_loop()
        deadline, drained = loop.time() + 1.0, 0
        while message.get("more_body", False) and drained <= self.limit:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                return
            if message["type"] != "http.request":
                return
            drained += len(message.get("body", b""))


class SecurityHeaders:
    """Add :data:`SECURITY_HEADERS` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *[(k, v) for k, v in SECURITY_HEADERS if k not in present]]
            await send(message)

        await self.app(scope, receive, with_headers)
