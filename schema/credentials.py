"""Who a GraphQL request acts as (SPEC 7): the `Authorization: Bearer` credential it
carries, an API key or an access token, made into a resolvers.access.Credential.

A request without one acts as `anonymous` with every scope in open mode and is refused in
required mode; a credential that is unknown, revoked, expired or badly signed is refused
in both. A refusal is 401 with `WWW-Authenticate: Bearer` and the code UNAUTHENTICATED,
before anything runs, and it is the client's mistake: logged at info, without a
traceback, naming an API key by its prefix and never by its secret.
"""

from __future__ import annotations

import logging
import re

from starlette.requests import Request

from db.api_keys import ApiKey, LastUse, find_key, is_api_key
from db.database import Session
from db.errors import Unavailable
from resolvers.access import ALL_SCOPES, OPEN, Credential
from schema.http import RefusedRequest
from schema.tokens import AccessTokens, KeysUnavailable, TokenRefused

log = logging.getLogger(__name__)

UNAUTHENTICATED = "UNAUTHENTICATED"
UNAVAILABLE = "UNAVAILABLE"
# RFC 6750 lets a server leave out error="invalid_token"; the body says what went wrong.
CHALLENGE = {"WWW-Authenticate": "Bearer"}
_PREFIX = re.compile(r"alloc_[0-9a-f]{12}")


class Unauthenticated(RefusedRequest):
    def __init__(self, reason: str) -> None:
        super().__init__(401, reason, UNAUTHENTICATED, CHALLENGE)


def _unavailable(reason: str) -> RefusedRequest:
    return RefusedRequest(503, reason, UNAVAILABLE, {"Retry-After": "1"})


def _named(secret: str) -> str:
    """An API key as logs may name it: by its prefix, never its secret."""
    prefix = secret[:18]
    return f"API key {prefix}" if _PREFIX.fullmatch(prefix) else "a malformed API key"


class Authenticator:
    """The credential of each GraphQL request (one per app: it keeps the throttle of the
    keys' last-use writes and the provider's keys)."""

    def __init__(self, *, required: bool, tokens: AccessTokens | None) -> None:
        self.required, self.tokens = required, tokens
        self.last_use = LastUse()

    async def close(self) -> None:
        if self.tokens is not None:
            await self.tokens.close()

    async def credential(self, request: Request, session: Session) -> Credential:
        """Raises Unauthenticated, or RefusedRequest 503 when what checks a credential
        (the database, the provider's keys) cannot be reached."""
        presented = self._bearer(request)
        if presented is None:
            if self.required:
                log.info("refused a request without a credential")
                raise Unauthenticated(
                    "This server needs a credential: send `Authorization: Bearer <API key "
                    "or access token>`."
                )
            return OPEN
        if is_api_key(presented):
            return await self._api_key(presented, session)
        return await self._access_token(presented)

    @staticmethod
    def _bearer(request: Request) -> str | None:
        given = request.headers.getlist("authorization")
        if not given:
            return None
        if len(given) > 1:
            raise _refused("several Authorization headers", "Send one Authorization header.")
        scheme, _, credential = given[0].strip().partition(" ")
        if scheme.lower() != "bearer":
            # Not even the scheme is logged: a client may have sent its secret alone.
            raise _refused(
                "an Authorization header of another scheme",
                "Use `Authorization: Bearer <API key or access token>`.",
            )
        credential = credential.strip()
        if not credential:
            raise _refused("an empty Bearer credential", "The Bearer credential is empty.")
        return credential

    async def _api_key(self, secret: str, session: Session) -> Credential:
        try:
            key = await find_key(session, secret)
            if key is not None and key.active:
                await self.last_use.record(session, key)
        except Unavailable as error:
            log.warning("could not check %s: %s", _named(secret), error)
            raise _unavailable(Unavailable.message) from error
        if key is None:
            raise _refused(_named(secret), "The API key is not known to this server.")
        if not key.active:
            raise _refused(f"revoked API key {key.prefix}", "This API key has been revoked.")
        return _key_credential(key)

    async def _access_token(self, token: str) -> Credential:
        if self.tokens is None:
            raise _refused(
                "an access token (no JWT_JWKS is set)",
                "This server takes API keys only: it is not set up for access tokens.",
            )
        try:
            return await self.tokens.credential(token)
        except TokenRefused as refusal:
            raise _refused("an access token", str(refusal)) from refusal
        except KeysUnavailable as error:
            raise _unavailable(
                "The identity provider's keys could not be fetched to check the access "
                "token; try again shortly."
            ) from error


def _refused(what: str, reason: str) -> Unauthenticated:
    log.info("refused %s: %s", what, reason)
    return Unauthenticated(reason)


def _key_credential(key: ApiKey) -> Credential:
    known = {scope.value: scope for scope in ALL_SCOPES}
    scopes = frozenset(known[name] for name in key.scopes if name in known)
    return Credential(actor=key.name, scopes=scopes, owner=f"key:{key.id}")
