"""API keys in the database (db/api_keys.py): only a hash of a secret is kept, a key is
found by its secret alone, a name is never reused, and a busy key's last use is written
at most once a minute."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db import api_keys
from db.api_keys import LastUse, NameTaken, create_key, find_key, list_keys, prefix_of, revoke_key
from db.database import Database


@pytest.fixture
def db(database: Database, engine: AsyncEngine) -> Database:
    return database


async def test_a_secret_has_a_visible_prefix_and_only_its_hash_is_stored(
    db: Database, engine: AsyncEngine
) -> None:
    async with db.session() as session:
        key, secret = await create_key(session, "acme", ["orders:read"])

    assert secret.startswith(key.prefix + "_")
    assert prefix_of(secret) == key.prefix
    assert len(secret) - len(key.prefix) - 1 >= 43  # 256 random bits after the prefix
    async with engine.connect() as connection:
        row = (await connection.execute(text("SELECT * FROM api_keys"))).one()
    assert bytes(row.secret_hash) == hashlib.sha256(secret.encode()).digest()
    assert secret not in repr(tuple(row))


async def test_two_keys_never_share_a_secret_or_a_prefix(db: Database) -> None:
    async with db.session() as session:
        made = [await create_key(session, f"key-{n}", ["admin"]) for n in range(20)]

    assert len({secret for _, secret in made}) == 20
    assert len({key.prefix for key, _ in made}) == 20


async def test_a_key_is_found_by_its_whole_secret_only(db: Database) -> None:
    async with db.session() as session:
        key, secret = await create_key(session, "acme", ["orders:read"])
        found = await find_key(session, secret)
        other_secret = await find_key(session, secret[:-1] + ("x" if secret[-1] != "x" else "y"))
        malformed = await find_key(session, secret + "x")
        unknown = await find_key(session, "alloc_ffffffffffff_" + secret[19:])

    assert found == key
    assert (other_secret, malformed, unknown) == (None, None, None)


async def test_a_revoked_key_is_found_but_not_active_and_its_name_stays_taken(
    db: Database,
) -> None:
    async with db.session() as session:
        _, secret = await create_key(session, "acme", ["orders:read"])
        revoked = await revoke_key(session, "acme")
        found = await find_key(session, secret)
        with pytest.raises(NameTaken):
            await create_key(session, "acme", ["orders:read"])
        listed = await list_keys(session)

    assert revoked is not None
    assert revoked[1] is False  # revoked by this call
    assert found is not None
    assert not found.active
    assert [key.name for key in listed] == ["acme"]


async def test_a_drawn_prefix_that_is_taken_is_drawn_again(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with db.session() as session:
        first, _ = await create_key(session, "first", ["admin"])
        draws = iter([(first.prefix, f"{first.prefix}_{'a' * 43}"), api_keys.new_secret()])
        monkeypatch.setattr(api_keys, "new_secret", lambda: next(draws))
        second, secret = await create_key(session, "second", ["admin"])

    assert second.prefix != first.prefix
    assert prefix_of(secret) == second.prefix


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_last_use_is_written_at_most_once_per_interval_per_key(
    db: Database, engine: AsyncEngine
) -> None:
    clock = Clock()
    last_use = LastUse(interval=60, clock=clock)
    async with db.session() as session:
        busy, _ = await create_key(session, "busy", ["admin"])
        quiet, _ = await create_key(session, "quiet", ["admin"])

        writes = [await last_use.record(session, busy) for _ in range(3)]
        clock.now = 59.9
        writes.append(await last_use.record(session, busy))
        writes.append(await last_use.record(session, quiet))  # its own schedule
        clock.now = 60.0
        writes.append(await last_use.record(session, busy))

    assert writes == [True, False, False, False, True, True]
    async with engine.connect() as connection:
        used = (await connection.execute(text("SELECT last_used_at FROM api_keys"))).all()
    assert all(row.last_used_at is not None for row in used)
