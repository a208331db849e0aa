"""Faults to inject during a load run (tests/load/workload.py's Fault actions)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
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
