"""Faults to inject during a load run (tests/load/workload.py's Fault actions)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from db.engine import asyncpg_url
from tests.load.server import LiveServer, OwnPostgres

Action = Callable[[], Awaitable[str]]

_TERMINATE = """
SELECT count(pg_terminate_backend(pid)),
       count(*) FILTER (WHERE state <> 'idle')
FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
"""


def terminate_backends(database_url: str) -> Action:
    """pg_terminate_backend on every other connection to the database: the server's."""

    async def action() -> str:
        engine = create_async_engine(asyncpg_url(database_url), poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                killed, busy = (await conn.execute(text(_TERMINATE))).one()
        finally:
            await engine.dispose()
        return f"{killed} backends terminated, {busy} of them busy"

    return action


# Transactions waiting for a lock on a table (taken by with_mutations_held). Counted from
# pg_locks, not told apart by pg_stat_activity's query: a prepared statement waits for its
# locks at Bind, before the query shown is its own.
_WAITING_FOR = """
SELECT count(*) FROM pg_locks WHERE relation = CAST(:table AS regclass) AND NOT granted
"""
# What with_mutations_held waits for, by table: keyed mutations at their claim of the key
# (db/idempotency.py's CLAIM_KEY, their first write), the others at their first write of
# an order. (The purge of expired keys would also wait on idempotency_keys; it is rare.)
TO_HOLD = {"idempotency_keys": 4, "sales_orders": 2}
# Under the claim's lock_timeout (5 s), so that no held call is answered UNAVAILABLE.
HOLD_AT_MOST_SECONDS = 2.0


async def _waiting(watch: AsyncConnection) -> dict[str, int]:
    return {
        table: (await watch.execute(text(_WAITING_FOR), {"table": table})).scalar_one()
        for table in TO_HOLD
    }


def with_mutations_held(database_url: str, action: Action) -> Action:
    """action, struck while mutations are inside the server, each in its transaction: so
    that a fault which cuts requests off surely cuts off both kinds, keyed ones (which are
    sent again) and others (whose outcome stays unknown), whatever the machine's speed.
    SHARE locks, which let reads go on, hold every claim of an Idempotency-Key and every
    other write of an order until the action is done; TO_HOLD says how many of each to
    wait for, HOLD_AT_MOST_SECONDS for how long at most. No deadlock: a keyed mutation
    claims its key before it writes anything else."""

    async def held() -> str:
        engine = create_async_engine(asyncpg_url(database_url), poolclass=NullPool)
        try:
            async with engine.begin() as lock, engine.connect() as watch:
                for table in TO_HOLD:
                    await lock.execute(text(f"LOCK TABLE {table} IN SHARE MODE"))
                deadline = time.monotonic() + HOLD_AT_MOST_SECONDS
                waiting = await _waiting(watch)
                while time.monotonic() < deadline and any(
                    waiting[table] < wanted for table, wanted in TO_HOLD.items()
                ):
                    await asyncio.sleep(0.005)
                    waiting = await _waiting(watch)
                detail = await action()
        finally:
            await engine.dispose()
        keyed, others = waiting["idempotency_keys"], waiting["sales_orders"]
        return f"{detail}; held: {keyed} keyed mutations, {others} others"

    return held


def kill_worker(server: LiveServer) -> Action:
    """SIGKILL one uvicorn worker; its supervisor starts another."""

    async def action() -> str:
        killed, started = await asyncio.to_thread(server.kill_worker)
        return f"worker {killed} killed, worker {started} started in its place"

    return action


def kill_server(server: LiveServer) -> Action:
    """SIGKILL the supervisor and its workers at once, then start the server again."""

    async def action() -> str:
        started = time.monotonic()
        await asyncio.to_thread(server.kill)
        await asyncio.to_thread(server.start)
        return f"server killed and started again in {time.monotonic() - started:.1f} s"

    return action


def restart_postgres(postgres: OwnPostgres) -> Action:
    """pg_ctl restart -m fast: every connection is cut, and for a moment none is taken."""

    async def action() -> str:
        took = await asyncio.to_thread(postgres.restart)
        return f"PostgreSQL restarted in {took:.1f} s"

    return action
