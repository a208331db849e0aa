"""The database as the request path uses it: an asyncpg pool, and one connection per
request or unit of work (a Session).

The request path runs its statements on asyncpg directly: bench/ measured
SQLAlchemy's async layer at about three times asyncpg's CPU per statement (see
docs/benchmarks.md), a third of a request's budget. SQLAlchemy keeps the tables, the
migrations and the tools (db/tables.py, db/engine.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self, TypeVar
from urllib.parse import parse_qs, urlsplit

import asyncpg
from sqlalchemy.engine import make_url

from db.errors import Unavailable, connection_lost

StatementHook = Callable[[str], None]
T = TypeVar("T")
BEGIN_READ_ONLY = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"


def dsn(url: str) -> str:
    """A libpq URL for asyncpg from any of the spellings SQLAlchemy accepts."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _socket_host(url: str) -> str | None:
    """The ?host= of a Unix-socket URL (postgresql://user@/db?host=/run/dir)."""
    hosts = parse_qs(urlsplit(url).query).get("host")
    return hosts[0] if hosts else None


class Database:
    """A pool of connections for one process, opened on first use (so an app needs no
    start-up hook to serve). A connection that the server lost is dropped by asyncpg
    when it is given back, and a fresh one made on demand, so no liveness check (a
    round trip) is needed on each checkout."""

    def __init__(self, url: str, size: int = 10, on_statement: StatementHook | None = None) -> None:
        self.url, self.size, self.on_statement = url, size, on_statement
        self.checkouts = 0  # connections taken from the pool, for bench/ and tests
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _opened(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    dsn(self.url), host=_socket_host(self.url), min_size=0,
                    max_size=self.size, reset=_keep_session,
                )  # fmt: skip
        return self._pool

    async def acquire(self) -> asyncpg.pool.PoolConnectionProxy:
        pool = self._pool or await self._opened()
        connection = await pool.acquire()
        self.checkouts += 1
        return connection

    async def release(self, connection: asyncpg.pool.PoolConnectionProxy) -> None:
        assert self._pool is not None
        await self._pool.release(connection)

    async def close(self) -> None:
        """Close every connection once it is given back (for at most 10 s: after that,
        the ones still out are cut)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=10)
            except TimeoutError:
                pool.terminate()

    def session(self) -> Session:
        return Session(self)


class Session:
    """One connection from the pool: taken on the first statement, given back by
    close(). Statements run one at a time (a connection runs one at a time), so the
    concurrently resolved root fields of one query can share it. A lost connection
    becomes Unavailable."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._connection: asyncpg.pool.PoolConnectionProxy | None = None
        self._turn = asyncio.Lock()
        self._savepoints = 0

    async def _connect(self) -> asyncpg.pool.PoolConnectionProxy:
        if self._connection is None:
            try:
                self._connection = await self.database.acquire()
            except Exception as error:
                if connection_lost(error):
                    raise Unavailable() from error
                raise
        return self._connection

    async def _run(
        self, statement: str, call: Callable[[asyncpg.pool.PoolConnectionProxy], Awaitable[T]]
    ) -> T:
        hook = self.database.on_statement
        async with self._turn:
            connection = await self._connect()
            if hook is not None:
                hook(statement)
            try:
                return await call(connection)
            except Exception as error:
                if connection_lost(error):
                    self._savepoints = 0  # the transaction went with the connection
                    raise Unavailable() from error
                raise

    async def fetch(self, statement: str, *args: object) -> list[asyncpg.Record]:
        return await self._run(statement, lambda c: c.fetch(statement, *args))

    async def fetchrow(self, statement: str, *args: object) -> asyncpg.Record | None:
        return await self._run(statement, lambda c: c.fetchrow(statement, *args))

    async def fetchval(self, statement: str, *args: object) -> object:
        return await self._run(statement, lambda c: c.fetchval(statement, *args))

    async def execute(self, statement: str, *args: object) -> str:
        return await self._run(statement, lambda c: c.execute(statement, *args))

    # -- transactions: a unit of work inside another (an idempotent request's) is a savepoint

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open; not on a connection the server closed (what was
        uncommitted on it is gone)."""
        if self._connection is None:
            return False
        try:
            return not self._connection.is_closed() and self._connection.is_in_transaction()
        except asyncpg.InterfaceError:  # the pool let go of it when the server closed it
            return False

    async def begin(self, *, read_only: bool = False) -> None:
        """read_only: one snapshot for every statement, and the database refuses writes
        (a savepoint inside a transaction already open shares that one's snapshot)."""
        if self.in_transaction:
            self._savepoints += 1
            await self.execute(f"SAVEPOINT s{self._savepoints}")
        else:
            await self.execute(BEGIN_READ_ONLY if read_only else "BEGIN")

    async def commit(self) -> None:
        if self._savepoints:
            await self.execute(f"RELEASE SAVEPOINT s{self._savepoints}")
            self._savepoints -= 1
        else:
            await self.execute("COMMIT")

    async def rollback(self) -> None:
        if self._savepoints:
            await self.execute(f"ROLLBACK TO SAVEPOINT s{self._savepoints}")
            await self.execute(f"RELEASE SAVEPOINT s{self._savepoints}")
            self._savepoints -= 1
        elif self.in_transaction:
            await self.execute("ROLLBACK")

    async def close(self) -> None:
        """Give the connection back, rolling back a transaction left open (a request
        that failed mid-way); a broken connection is closed by the pool."""
        if self.in_transaction:
            self._savepoints = 0
            with contextlib.suppress(Exception):  # the pool drops a connection that fails
                await self.execute("ROLLBACK")
        await self._give_back()

    async def release(self) -> None:
        """Give the connection back now unless a transaction is open on it; the next
        statement takes one again."""
        if not self.in_transaction:
            await self._give_back()

    async def _give_back(self) -> None:
        connection, self._connection = self._connection, None
        self._savepoints = 0
        if connection is not None:
            await self.database.release(connection)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Given back to the pool, a connection is only rolled back if a transaction was left
    open (asyncpg does that itself). Its default reset (RESET ALL, UNLISTEN, ...) would
    cost a round trip per request, for session state this server never changes."""
