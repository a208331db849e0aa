"""The HTTP edge, as ASGI middleware around the whole app: every response's
X-Request-Id, and the request body limit (413)."""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

from cross_web import HTTPException
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schema.http import RefusedRequest, error_response

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
# A client's id is kept when it is 1 to 128 printable ASCII characters (SPEC 7): safe to
# echo in a header and to write into a log line as it is.
_CLIENT_REQUEST_ID = re.compile(r"[\x20-\x7e]{1,128}")

# The id of the request this task serves: log lines read it (schema/logs.py), and so can
# anything the request runs. The GraphQL context has it as `Context.request_id`; other
# ASGI code as `request.state.request_id`.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def _request_id_of(scope: Scope) -> str:
    sent = Headers(scope=scope).get(REQUEST_ID_HEADER)
    if sent is not None and _CLIENT_REQUEST_ID.fullmatch(sent):
        return sent
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Gives each HTTP request its id (the client's own, when usable) in
    `scope["state"]["request_id"]` and the `request_id` context variable, and puts it
    on the response as X-Request-Id, whatever answered: a route, a refusal, CORS."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        value = _request_id_of(scope)
        scope.setdefault("state", {})["request_id"] = value

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = value
            await send(message)

        token = request_id.set(value)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)


class _BodyTooLargeError(Exception):
    """Raised from `receive` once a body passes the limit, to unwind the app's read."""


class BodyLimitMiddleware:
    """Refuses a request body over `max_bytes` with 413.

    At once when Content-Length says so (the app is not called, nothing is read). A
    body declared within the limit is let through as it is: the HTTP server hands out
    no more than the declared length. Otherwise (chunked) while the app reads:
    `receive` counts the bytes it hands out and raises as soon as the count passes the
    limit, so no more than the limit plus one chunk of the server's is ever held.
    Starlette's own RequestBodyLimitMiddleware answers in plain text and lets the app
    run when Content-Length is over; clients here get the JSON error body every other
    refusal has. The 413 closes the connection, so the server does not go on reading
    (and discarding) the rest of the body."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self.max_bytes:
                await self._refuse(scope, receive, send)
            else:  # the HTTP server hands out no more than a declared length
                await self.app(scope, receive, send)
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
        error: HTTPException = RefusedRequest(
            413,
            f"The request body is larger than this server's limit of {self.max_bytes} bytes.",
            "BODY_TOO_LARGE",
        )
        response = error_response(Request(scope), error, headers={"Connection": "close"})
        await response(scope, receive, send)
