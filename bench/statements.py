"""SQL statements per request, counted in-process as tests/api/test_statement_count.py
counts them (SQLAlchemy's before_cursor_execute), and pool checkouts: each checkout
also costs a round trip, the engine's pre-ping, which is not a statement of ours."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.queries import ALLOCATE, ORDER_PAGE, ORDER_SCREEN, body
from db.engine import create_engine
from db.repositories import SqlUnitOfWork
from schema.app import create_app
from schema.settings import Settings
from services import orders


@dataclass
class Counter:
    statements: int = 0
    checkouts: int = 0

    def listen(self, engine: AsyncEngine) -> None:
        event.listen(engine.sync_engine, "before_cursor_execute", self._statement)
        event.listen(engine.sync_engine.pool, "checkout", self._checkout)

    def _statement(self, *_: object) -> None:
        self.statements += 1

    def _checkout(self, *_: object) -> None:
        self.checkouts += 1

    def since(self, before: Counter) -> Counter:
        return Counter(self.statements - before.statements, self.checkouts - before.checkouts)

    def copy(self) -> Counter:
        return Counter(self.statements, self.checkouts)


def global_id(kind: str, pk: int) -> str:
    return base64.b64encode(f"{kind}:{pk}".encode()).decode()


async def allocate_transaction(database_url: str, order_id: int) -> int:
    """Statements of services.orders.allocate_order's transaction for this order."""
    engine = create_engine(database_url, pool_size=1)
    counter = Counter()
    counter.listen(engine)
    try:
        await orders.allocate_order(lambda: SqlUnitOfWork(engine), order_id)
    finally:
        await engine.dispose()
    return counter.statements


class InProcess:
    """The real ASGI app in this process, with counted statements and checkouts."""

    def __init__(self, http: httpx.AsyncClient, counter: Counter) -> None:
        self.http = http
        self.counter = counter

    async def post(self, payload: dict[str, Any]) -> tuple[dict[str, Any], Counter]:
        before = self.counter.copy()
        response = await self.http.post("/graphql", json=payload)
        result: dict[str, Any] = response.json()
        if response.status_code != 200 or result.get("errors"):
            raise RuntimeError(f"unexpected answer: {result}")
        return result, self.counter.since(before)

    async def allocate(self, order_id: int) -> Counter:
        result, used = await self.post(body(ALLOCATE, id=global_id("SalesOrder", order_id)))
        if result["data"]["allocateOrder"]["errors"]:
            raise RuntimeError(f"allocateOrder failed: {result}")
        return used

    async def order(self, number: str) -> Counter:
        return (await self.post(body(ORDER_SCREEN, number=number)))[1]

    async def page(self, first: int) -> Counter:
        result, used = await self.post(body(ORDER_PAGE, first=first))
        if len(result["data"]["salesOrders"]["edges"]) != first:
            raise RuntimeError(f"expected a page of {first} orders")
        return used


@asynccontextmanager
async def in_process(database_url: str) -> AsyncIterator[InProcess]:
    app = create_app(Settings(_env_file=None, database_url=database_url))
    counter = Counter()
    counter.listen(app.state.engine)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            yield InProcess(http, counter)
    finally:
        await app.state.engine.dispose()
