"""API keys, the partners' credentials (SPEC 7): made, revoked, listed and found by the
secret a request presents. Only a SHA-256 hash of a secret is stored; the secret's visible
prefix finds its key and names it in logs without revealing it.

A secret reads `alloc_<12 hex digits>_<43 URL-safe characters>`: the first part is the
key's prefix (48 random bits, unique, shown in `make api-keys` and in logs), the rest 256
random bits that only its holder knows.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from db.database import Session

KEY_MARKER = "alloc_"  # a JWT starts with "eyJ", so this tells the two apart
_SECRET = re.compile(r"(alloc_[0-9a-f]{12})_[A-Za-z0-9_-]{43}")
LAST_USE_INTERVAL = 60.0  # seconds: a busy key writes its last use at most this often

_COLUMNS = "id, name, prefix, scopes, created_at, last_used_at, revoked_at"
# ON CONFLICT (name): a name taken, even by a revoked key, makes no row. A clash of
# prefixes (one in 2^48 per pair) still raises, and the caller draws another secret.
CREATE_KEY = f"""INSERT INTO api_keys (name, prefix, secret_hash, scopes) VALUES ($1, $2, $3, $4)
ON CONFLICT (name) DO NOTHING RETURNING {_COLUMNS}"""
# Revoking twice keeps the first time: the key stopped working then. `earlier` tells the
# two apart (now() is the time this statement's transaction began).
REVOKE_KEY = f"""UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE name = $1
RETURNING {_COLUMNS}, revoked_at < now() AS earlier"""
LIST_KEYS = f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, id"
KEY_BY_PREFIX = f"SELECT {_COLUMNS}, secret_hash FROM api_keys WHERE prefix = $1"
RECORD_USE = "UPDATE api_keys SET last_used_at = now() WHERE id = $1"


@dataclass(frozen=True)
class ApiKey:
    """A key as anyone may see it: never its secret nor the secret's hash."""

    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class NameTaken(Exception):  # noqa: N818 - an outcome, named as the warehouse's admin sees it
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        id=row["id"],
        name=row["name"],
        prefix=row["prefix"],
        scopes=tuple(row["scopes"]),
        created_at=row["created_at"],
        last_used_at=row["last_used_at"],
        revoked_at=row["revoked_at"],
    )


def secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def new_secret() -> tuple[str, str]:
    """A fresh (prefix, secret)."""
    prefix = KEY_MARKER + secrets.token_hex(6)
    return prefix, f"{prefix}_{secrets.token_urlsafe(32)}"


def prefix_of(secret: str) -> str | None:
    """The prefix of a well-formed secret; None for anything else."""
    matched = _SECRET.fullmatch(secret)
    return matched.group(1) if matched else None


def is_api_key(credential: str) -> bool:
    """Whether a bearer credential is meant as an API key (rather than an access token)."""
    return credential.startswith(KEY_MARKER)


async def create_key(session: Session, name: str, scopes: Sequence[str]) -> tuple[ApiKey, str]:
    """Store a new key; returns it with its secret, which is not kept and cannot be shown
    again. Raises NameTaken when any key, revoked or not, has that name. The caller has
    checked the name and the scopes (schema/keys.py)."""
    for _ in range(3):
        prefix, secret = new_secret()
        try:
            row = await session.fetchrow(
                CREATE_KEY, name, prefix, secret_hash(secret), list(scopes)
            )
        except asyncpg.UniqueViolationError:
            continue  # the prefix was drawn before
        if row is None:
            raise NameTaken(name)
        return _key(row), secret
    raise RuntimeError("three prefixes in a row were taken: the random source is broken")


async def revoke_key(session: Session, name: str) -> tuple[ApiKey, bool] | None:
    """Revoke the key of that name: the key, and whether it had been revoked before; None
    when there is none. The key stays, so its name is never given to another key."""
    row = await session.fetchrow(REVOKE_KEY, name)
    return (_key(row), row["earlier"]) if row is not None else None


async def list_keys(session: Session) -> list[ApiKey]:
    return [_key(row) for row in await session.fetch(LIST_KEYS)]


async def find_key(session: Session, secret: str) -> ApiKey | None:
    """The key whose secret this is, active or revoked (the caller tells them apart, to
    say which); None when no key has it."""
    prefix = prefix_of(secret)
    if prefix is None:
        return None
    row = await session.fetchrow(KEY_BY_PREFIX, prefix)
    # The hashes are compared in constant time, so the time taken says nothing of how
    # much of a guessed secret was right.
    if row is None or not hmac.compare_digest(row["secret_hash"], secret_hash(secret)):
        return None
    return _key(row)


class LastUse:
    """Records when each key was last used, at most once per `interval` per key in this
    process: a key sending hundreds of requests a second costs one write a minute, not
    one per request. `make api-keys` may therefore show a time up to a minute early (and
    with several workers, each writes on its own schedule)."""

    def __init__(
        self, interval: float = LAST_USE_INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval, self.clock = interval, clock
        self._written: dict[int, float] = {}

    async def record(self, session: Session, key: ApiKey) -> bool:
        """Write this use if the key's last write is old enough; True when it wrote."""
        now = self.clock()
        last = self._written.get(key.id)
        if last is not None and now - last < self.interval:
            return False
        # Marked before the write, so concurrent requests of the key do not all write.
        self._written[key.id] = now
        await session.execute(RECORD_USE, key.id)
        return True
