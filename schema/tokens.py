"""JWT access tokens from an OpenID Connect provider (SPEC 7), checked as RFC 8725 advises.

joserfc parses the token, checks that the algorithm is allowed and fits the key's type
(and curve) and verifies the signature; this module decides which key, and which claims
make an access token for this server:

- the algorithm is one of ALGORITHMS (no `none`, no HMAC: a public key used as an HMAC
  secret would let anyone sign);
- the key is the provider's key named by `kid`, and only that one; an unknown `kid` makes
  the keys be fetched again, at most once per REFETCH_INTERVAL, before it is refused;
  `jku`, `x5u`, `jwk` and `x5c` never choose a key (they would let a token bring its own);
- `exp`, `iss` (JWT_ISSUER), `aud` (naming JWT_AUDIENCE) and `sub` are required, and the
  times are checked with LEEWAY seconds for clock skew;
- `typ`, when there, says JWT or at+jwt; a token with a `nonce` is an ID token, made for
  the client that signed in and not for this API, and is refused.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from joserfc import jws
from joserfc.errors import (
    ClaimError,
    ExpiredTokenError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import Key, KeySet
from joserfc.jws import JWSRegistry
from joserfc.jwt import JWTClaimsRegistry

from resolvers.access import ALL_SCOPES, RESERVED_ACTORS, Credential, Scope

log = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")
LEEWAY = 30  # seconds of clock skew allowed on exp, nbf and iat
REFETCH_INTERVAL = 30.0  # seconds between two fetches of the keys, whatever asks for them
KEYS_MAX_AGE = 900.0  # keys older than this are fetched again, so a withdrawn key stops working
FETCH_TIMEOUT = 5.0
TYPES = frozenset({"jwt", "at+jwt", "application/jwt", "application/at+jwt"})
MAX_SUBJECT = 255  # OpenID Connect's limit on `sub`; it goes on record as the actor


class _AccessTokenRegistry(JWSRegistry):
    """The allowed algorithms, and only those, known by name."""

    # `jku`, `x5c` and the like are ignored, but a provider may still send them: a
    # certificate chain makes a header longer than joserfc's default 512 bytes.
    max_header_length = 8192
    algorithms = {name: JWSRegistry.algorithms[name] for name in ALGORITHMS}
    # RFC 9864 deprecates the name EdDSA for Ed25519 and Ed448, and joserfc warns on each
    # use; SPEC 7 allows it by that name, so the warning would only repeat on every request.
    algorithms["EdDSA"] = copy.copy(algorithms["EdDSA"])
    algorithms["EdDSA"].security_warning = None


REGISTRY = _AccessTokenRegistry(algorithms=ALGORITHMS, strict_check_header=False)


class TokenRefused(Exception):  # noqa: N818 - an outcome: the client sees the message
    """The token is not a valid access token for this server; the message says why."""


class KeysUnavailable(Exception):  # noqa: N818 - an outcome, like db.errors.Unavailable
    """The provider's keys could not be had, so no token can be checked just now."""


class ProviderKeys:
    """The provider's public keys (a JWKS) from an https URL or a file, kept in memory.

    Fetched on first use, again after KEYS_MAX_AGE, and when a token names a key that is
    not there (a new key after a rotation); never more than once per REFETCH_INTERVAL, so
    tokens with made-up `kid`s cannot make this server hammer the provider. Concurrent
    requests wait for the one fetch. Each worker process keeps its own copy."""

    def __init__(
        self,
        source: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source, self.clock = source, clock
        self.fetches = 0  # how many times the keys were fetched (tests and logs)
        self._keys: dict[str, list[Key]] | None = None
        self._fetched_at: float | None = None  # when the last attempt began, ok or not
        self._loaded_at: float | None = None
        self._lock = asyncio.Lock()
        self._http = (
            httpx.AsyncClient(transport=transport, timeout=FETCH_TIMEOUT)
            if source.startswith("https://")
            else None
        )

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def key(self, kid: str, key_type: str) -> Key | None:
        """The key named `kid` (of `key_type` if the set has several of that name); None
        when there is none, even after fetching the keys again when that was allowed."""
        now = self.clock()
        stale = self._loaded_at is None or now - self._loaded_at >= KEYS_MAX_AGE
        if stale or kid not in (self._keys or {}):
            await self._fetch_if_allowed()
        if self._keys is None:
            raise KeysUnavailable("the provider's keys (JWT_JWKS) could not be loaded")
        named = self._keys.get(kid, [])
        fitting = [key for key in named if key.key_type == key_type]
        # A key of another type is still returned, for joserfc to refuse by name.
        return next(iter(fitting or named), None)

    async def _fetch_if_allowed(self) -> None:
        async with self._lock:
            last = self._fetched_at
            if last is not None and self.clock() - last < REFETCH_INTERVAL:
                return  # fetched a moment ago (perhaps by a request we waited for)
            self._fetched_at = self.clock()
            self.fetches += 1
            try:
                key_set = KeySet.import_key_set(await self._read())
            except (httpx.HTTPError, OSError, ValueError, KeyError, TypeError, JoseError) as error:
                # Old keys stay in use: an outage of the provider does not lock users out.
                log.warning("could not load the keys from JWT_JWKS %s: %s", self.source, error)
                return
            keys: dict[str, list[Key]] = {}
            for key in key_set:
                keys.setdefault(str(key.kid), []).append(key)
            self._keys, self._loaded_at = keys, self.clock()

    async def _read(self) -> Any:
        if self._http is None:
            return json.loads(await asyncio.to_thread(Path(self.source).read_bytes))
        response = await self._http.get(self.source, headers={"accept": "application/json"})
        response.raise_for_status()
        return response.json()


def _scopes(claims: dict[str, Any]) -> frozenset[Scope]:
    """From `scope` (space-separated, RFC 9068) and `scp` (a list; some providers send a
    space-separated string there too). Scopes this server does not know (openid, profile,
    another API's) are left out: a token may carry them for other APIs."""
    granted: list[str] = []
    for claim in ("scope", "scp"):
        value = claims.get(claim)
        if value is None:
            continue
        if isinstance(value, str):
            granted += value.split()
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            granted += value
        else:
            raise TokenRefused(f"The access token's `{claim}` claim is neither text nor a list.")
    known = {scope.value: scope for scope in ALL_SCOPES}
    return frozenset(known[name] for name in granted if name in known)


class AccessTokens:
    """Turns a bearer token into the Credential of its subject, or refuses it."""

    def __init__(
        self,
        keys: ProviderKeys,
        *,
        issuer: str,
        audience: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys, self.issuer, self.audience, self.clock = keys, issuer, audience, clock
        self._claims = JWTClaimsRegistry(
            now=lambda: int(self.clock()),
            leeway=LEEWAY,
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": audience},
            sub={"essential": True},
            exp={"essential": True},
        )

    async def close(self) -> None:
        await self.keys.close()

    async def credential(self, token: str) -> Credential:
        """Raises TokenRefused (the client's mistake) or KeysUnavailable (ours)."""
        signed = self._parse(token)
        header = signed.headers()
        alg, kid = header["alg"], header.get("kid")
        if alg not in ALGORITHMS:
            raise TokenRefused(
                f"The access token's algorithm {alg!r} is not accepted; "
                f"these are: {', '.join(ALGORITHMS)}."
            )
        if not isinstance(kid, str) or not kid:
            raise TokenRefused("The access token names no key (`kid`).")
        key = await self.keys.key(kid, REGISTRY.algorithms[alg].key_type)
        if key is None:
            raise TokenRefused(f"The access token's key {kid!r} is not one of the provider's.")
        try:
            verified = jws.validate_compact(signed, key, registry=REGISTRY)
        except JoseError as error:  # the key does not fit the algorithm, or is not for signing
            raise TokenRefused(
                f"The access token's key {kid!r} cannot check {alg}: {error.description}"
            ) from error
        if not verified:
            raise TokenRefused("The access token's signature does not verify.")
        return self._credential(self._claims_of(signed))

    @staticmethod
    def _parse(token: str) -> jws.CompactSignature:
        parts = token.count(".")
        if parts == 4:
            raise TokenRefused("Encrypted (JWE) tokens are not accepted.")
        if parts != 2:
            raise TokenRefused("The bearer credential is neither an API key nor a JWT.")
        try:
            signed = jws.extract_compact(token.encode(), registry=REGISTRY)
        except (JoseError, ValueError) as error:
            raise TokenRefused("The access token cannot be read as a JWT.") from error
        header = signed.headers()
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in TYPES):
            raise TokenRefused(f"The token's type (`typ`) {typ!r} is not JWT or at+jwt.")
        # crit names extensions a verifier must understand, and this one understands none;
        # b64 (RFC 7797) would change what was signed.
        for name in ("crit", "b64"):
            if name in header:
                raise TokenRefused(f"Tokens with a `{name}` header are not accepted.")
        return signed

    def _claims_of(self, signed: jws.CompactSignature) -> dict[str, Any]:
        try:
            claims = json.loads(signed.payload)
        except ValueError as error:
            raise TokenRefused("The access token's claims are not JSON.") from error
        if not isinstance(claims, dict):
            raise TokenRefused("The access token's claims are not a JSON object.")
        if "nonce" in claims:
            raise TokenRefused("This is an ID token (it has a `nonce`); send an access token.")
        try:
            self._claims.validate(claims)
        except ExpiredTokenError as error:
            raise TokenRefused("The access token has expired.") from error
        except MissingClaimError as error:
            raise TokenRefused(f"The access token lacks the claim(s) {error.claim}.") from error
        except ClaimError as error:
            raise TokenRefused(_claim_refusal(error.claim, self.issuer, self.audience)) from error
        return claims

    def _credential(self, claims: dict[str, Any]) -> Credential:
        subject: str = claims["sub"]  # a non-empty string: the claims registry saw to that
        if len(subject) > MAX_SUBJECT or not subject.isprintable():
            raise TokenRefused(
                f"The access token's `sub` must be at most {MAX_SUBJECT} printable characters."
            )
        if subject in RESERVED_ACTORS:
            raise TokenRefused(f"The subject {subject!r} is reserved on this server.")
        # The owner keeps providers' subjects apart (and from API keys): JSON cannot be
        # made ambiguous by what an issuer or subject contains.
        owner = "token:" + json.dumps([claims["iss"], subject])
        return Credential(actor=subject, scopes=_scopes(claims), owner=owner)


def _claim_refusal(claim: str, issuer: str, audience: str) -> str:
    if claim == "nbf":
        return "The access token is not valid yet (`nbf`)."
    if claim == "iat":
        return "The access token was issued in the future (`iat`)."
    if claim == "iss":
        return f"The access token's issuer is not {issuer!r}."
    if claim == "aud":
        return f"The access token is not meant for this API (its `aud` lacks {audience!r})."
    return f"The access token's `{claim}` claim is not valid."
