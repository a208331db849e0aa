"""Open mode (AUTH=open) serves this machine alone (SPEC 7, "Modes").

Anyone who reaches an open server acts with every scope, so it must be unreachable from
elsewhere: it refuses to start on a HOST that is not loopback, and it refuses requests

- addressed to a name that is not loopback (the Host header): a web page in the user's
  browser could otherwise rename its own site to 127.0.0.1 in DNS ("DNS rebinding") and
  read the API as if it were the page's own origin;
- from a peer that is not loopback: in case the server was bound elsewhere all the same
  (uvicorn's --host, which the app cannot see, rather than HOST).

Both refusals are 403 with the code LOOPBACK_ONLY.
"""

from __future__ import annotations

import functools
import ipaddress

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from schema.http import RefusedRequest, error_response
from schema.settings import Settings

LOOPBACK_ONLY = "LOOPBACK_ONLY"
_LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


@functools.lru_cache(maxsize=64)  # a few names per machine; bounded against any other
def is_loopback(host: str) -> bool:
    """localhost, an address in 127.0.0.0/8 or ::1 (bracketed or not)."""
    host = host.strip().lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]")).is_loopback
    except ValueError:
        return False


def host_of(header: str) -> str:
    """The host of a Host header, without its port: `[::1]:8000` -> `[::1]`."""
    if header.startswith("["):
        return header.partition("]")[0] + "]"
    return header.rpartition(":")[0] if ":" in header else header


def unsafe_open_mode(settings: Settings) -> str | None:
    """Why these settings must not be served, or None."""
    if settings.auth == "open" and not is_loopback(settings.host):
        return (
            f"AUTH=open serves anyone with every scope, so it listens on loopback only; "
            f"HOST is {settings.host!r}. Set HOST=127.0.0.1, or AUTH=required and give "
            "clients API keys (make api-key) or access tokens."
        )
    return None


class UnsafeSettingsError(RuntimeError):
    """Settings that must not be served (see unsafe_open_mode)."""


class LoopbackOnly:
    """ASGI middleware for open mode: requests not addressed to and coming from this
    machine get 403 LOOPBACK_ONLY, before anything else runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan; the app has no websocket routes
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        host = request.headers.get("host", "")
        client = scope.get("client")
        if not is_loopback(host_of(host)):
            reason = (
                f"This server runs with AUTH=open and answers requests to this machine only "
                f"(localhost, 127.0.0.1, [::1]); this one was addressed to {host!r}."
            )
        elif client is not None and not is_loopback(str(client[0])):
            reason = "This server runs with AUTH=open and answers requests from this machine only."
        else:
            await self.app(scope, receive, send)
            return
        response = error_response(request, RefusedRequest(403, reason, LOOPBACK_ONLY))
        await response(scope, receive, send)
