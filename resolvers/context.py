"""The per-request context: one database session (one pooled connection, taken on the
first statement and given back when the request ends, or once a mutation's unit of work
has committed), the units of work that change things on it, and the loaders and builder
that read on it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import strawberry
from starlette.requests import Request
from starlette.responses import Response

from db.database import Database, Session
from db.idempotency import Claim
from db.records import Written
from db.repositories import SnapshotUnitOfWork, SqlUnitOfWork
from resolvers.access import OPEN, Credential
from resolvers.graph import Graph
from resolvers.loaders import Loaders


@dataclass
class Context:
    database: Database
    request: Request | None = None
    response: Response | None = None
    credential: Credential = OPEN  # who the request acts as (the HTTP edge says)
    request_id: str | None = None  # X-Request-Id (schema/edge.py): kept with its movements
    claim: Claim | None = None  # the idempotency key the request holds (schema/idempotency.py)
    # Set when the request's mutation changed nothing and might do otherwise if sent
    # again (FORBIDDEN, UNAVAILABLE, VERSION_CONFLICT after the retries): an idempotency
    # key does not keep such an outcome.
    retryable_refusal: bool = False
    auto_fill_backorders: bool = False  # AUTO_FILL_BACKORDERS: receipts fill backorders
    session: Session = field(init=False)
    graph: Graph = field(init=False)
    _unit_of_work: SqlUnitOfWork | None = field(init=False, default=None)
    # The root fields of a query run concurrently on the one connection; two snapshots
    # at once would nest one transaction in the other.
    _snapshot_turn: asyncio.Lock = field(init=False, default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self.session = self.database.session()
        self.graph = Graph(Loaders(self.session))

    def unit_of_work(self) -> SqlUnitOfWork:
        """A unit of work on the request's connection (the use cases' factory)."""
        self._unit_of_work = SqlUnitOfWork(self.session, self.credential.actor, self.request_id)
        return self._unit_of_work

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[SnapshotUnitOfWork]:
        """A read-only unit of work on the request's connection (a preview's), one at a
        time; what it read stays in its `written` for the answer to show."""
        async with self._snapshot_turn:
            yield SnapshotUnitOfWork(self.session, self.credential.actor, self.request_id)

    def primed(self, written: Written | None) -> Graph:
        """A builder with fresh loaders, primed with what a unit of work read and wrote:
        it shows that, not what was read before it or might be read after it."""
        loaders = Loaders(self.session)
        if written is not None:
            loaders.prime(written)
        return Graph(loaders)

    async def after_change(self) -> Graph:
        """A builder for a mutation's payload, primed with what the change's unit of work
        wrote; the request's builder from now on.

        The connection goes back to the pool first, unless a transaction is still open
        on it (an idempotent request's): the payload is built from what the unit of work
        wrote, so while it is built and sent, the connection can serve another request.
        A payload field that must read after all takes one again."""
        await self.session.release()
        unit = self._unit_of_work
        self.graph = self.primed(unit.written if unit is not None else None)
        return self.graph

    async def close(self) -> None:
        await self.session.close()


Info = strawberry.Info[Context, None]
