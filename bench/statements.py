"""SQL statements per request, counted in-process as tests/api/test_statement_count.py
counts them (every statement of the request path goes through db.database.Session,
BEGIN and COMMIT included), and pool checkouts (one per request by design)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from bench.queries import ALLOCATE, ORDER_PAGE, ORDER_SCREEN, body
from db.database import Database
from db.repositories import SqlUnitOfWork
from schema.app import create_app
from schema.settings import Settings
from services import orders


@dataclass
class Counter:
    statements: int = 0
    checkouts: int = 0

    def since(self, before: Counter) -> Counter:
        return Counter(self.statements - before.statements, self.checkouts - before.checkouts)


class Counting:
    """Counts what a Database does."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.statements = 0
        database.on_statement = self._statement

    def _statement(self, _: str) -> None:
        self.statements += 1

    def now(self) -> Counter:
        return Counter(self.statements, self.database.checkouts)


def global_id(kind: str, pk: int) -> str:
    return base64.b64encode(f"{kind}:{pk}".encode()).decode()


async def allocate_transaction(database_url: str, order_id: int) -> int:
    """Statements of services.orders.allocate_order's transaction for this order."""
    database = Database(database_url, size=1)
    counting = Counting(database)
    try:
        await orders.allocate_order(lambda: SqlUnitOfWork(database), order_id)
    finally:
        await database.close()
    return counting.statements


class InProcess:
    """The real ASGI app in this process, with counted statements and checkouts."""

    def __init__(self, http: httpx.AsyncClient, counting: Counting) -> None:
        self.http = http
        self.counting = counting

    async def post(self, payload: dict[str, Any]) -> tuple[dict[str, Any], Counter]:
        before = self.counting.now()
        response = await self.http.post("/graphql", json=payload)
        result: dict[str, Any] = response.json()
        if response.status_code != 200 or result.get("errors"):
            raise RuntimeError(f"unexpected answer: {result}")
        return result, self.counting.now().since(before)

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
    app = create_app(Settings(_env_file=None, database_url=database_url, auth="open"))
    counting = Counting(app.state.database)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            yield InProcess(http, counting)
    finally:
        await app.state.database.close()
