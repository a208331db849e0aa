"""Idempotency keys (SPEC section 8) in the database: a key is claimed in the transaction
of the mutation it guards and keeps the outcome, so the change and its key commit
together, never one without the other."""

from __future__ import annotations

from dataclasses import dataclass

from db.database import Session

# A key no one holds, or one whose outcome has expired, is claimed; a claim in flight
# elsewhere makes this wait on the primary key until that transaction ends.
CLAIM_KEY = """INSERT INTO idempotency_keys (owner, key, request_digest, expires_at)
VALUES ($1, $2, $3, now() + make_interval(secs => $4))
ON CONFLICT (owner, key) DO UPDATE SET request_digest = EXCLUDED.request_digest,
    status = NULL, media_type = NULL, body = NULL, created_at = now(),
    expires_at = EXCLUDED.expires_at
WHERE idempotency_keys.expires_at < now()
RETURNING owner"""
KEPT_OUTCOME = """SELECT request_digest, status, media_type, body FROM idempotency_keys
WHERE owner = $1 AND key = $2"""
KEEP_OUTCOME = """UPDATE idempotency_keys SET status = $3, media_type = $4, body = $5
WHERE owner = $1 AND key = $2"""
PURGE = "DELETE FROM idempotency_keys WHERE expires_at < now()"
# How long a repeat waits for the first request with its key to end, before it is told
# to come back (409).
WAIT = "SET LOCAL lock_timeout = '5s'"


@dataclass(frozen=True)
class Claim:
    """The key a request holds in its open transaction."""

    owner: str
    key: str


@dataclass(frozen=True)
class Answer:
    """The HTTP answer a request with a key got."""

    status: int
    media_type: str
    body: bytes


@dataclass(frozen=True)
class Kept:
    """A key's first request (its digest) and the answer it got."""

    request_digest: bytes
    answer: Answer


async def claim(
    session: Session, owner: str, key: str, digest: bytes, ttl_seconds: float
) -> Kept | None:
    """Claim the key in the session's open transaction: None when this request is the
    first (or the key's outcome expired), else what was kept for it."""
    await session.execute(WAIT)
    if await session.fetchval(CLAIM_KEY, owner, key, digest, ttl_seconds) is not None:
        return None
    row = await session.fetchrow(KEPT_OUTCOME, owner, key)
    assert row is not None, "the key was there when the claim found it taken"
    assert row["status"] is not None, "a key commits with its outcome"
    return Kept(row["request_digest"], Answer(row["status"], row["media_type"], row["body"]))


async def keep(session: Session, claim: Claim, answer: Answer) -> None:
    await session.execute(
        KEEP_OUTCOME, claim.owner, claim.key, answer.status, answer.media_type, answer.body
    )


async def purge(session: Session) -> int:
    """Delete the keys whose outcomes have expired; how many."""
    result = await session.execute(PURGE)
    return int(result.rsplit(" ", 1)[1])
