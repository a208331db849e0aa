"""The HTTP edge, as ASGI middleware around the whole app: the request body limit (413)."""

from __future__ import annotations

import logging

from cross_web import HTTPException
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schema.http import CodedHTTPError, error_response

log = logging.getLogger(__name__)


class _BodyTooLargeError(Exception):
    """Raised from `receive` once a body passes the limit, to unwind the app's read."""


class BodyLimitMiddleware:
    """Refuses a request body over `max_bytes` with 413.

    At once when Content-Length says so (the app is not called, nothing is read);
    otherwise while the app reads: `receive` counts the bytes it hands out and raises
    as soon as the count passes the limit, so no more than the limit plus one chunk of
    the server's is ever held. Starlette's own RequestBodyLimitMiddleware answers in
    plain text and lets the app run when Content-Length is over; clients here get the
    JSON error body every other refusal has. The 413 closes the connection, so the
    server does not go on reading (and discarding) the rest of the body."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLargeError
            return message

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_within_limit, send_noting_start)
        except _BodyTooLargeError:
            if started:  # an app that answers before reading; nothing better to do
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        log.info("request body over MAX_BODY_BYTES (%d bytes) refused with 413", self.max_bytes)
        error: HTTPException = CodedHTTPError(
            413,
            f"The request body is larger than this server's limit of {self.max_bytes} bytes.",
            "BODY_TOO_LARGE",
        )
        response = error_response(Request(scope), error, headers={"Connection": "close"})
        await response(scope, receive, send)
