"""No N+1: a page of orders with every nested field costs the same number of SQL
statements whether it holds 5 orders or 50, each of 10 lines."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from schema.app import create_app
from schema.settings import Settings
from services import orders
from services.ports import UnitOfWorkFactory
from tests.service import helpers

EVERYTHING = """
query Orders($first: Int!) {
  salesOrders(first: $first) {
    totalCount pageInfo { hasNextPage endCursor }
    edges { cursor node {
      id number status version
      lines {
        id lineNumber quantity quantityAllocated quantityPacked quantityBackordered
        quantityCancelled
        item { sku onHand allocated available }
        salesOrder { number }
        allocations { name quantity quantityPacked lot { lotNumber item { sku } }
                      location { code } balance { onHand } salesOrderLine { lineNumber } }
        backorders { name quantity status salesOrder { number } }
        packedLines { quantity allocations { name } salesOrderLine { lineNumber } }
      }
      allocations { id } backorders { id } packedLines { id }
    } }
  }
}
"""
LINES = 10


class CountingClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.statements = 0

    async def orders(self, first: int) -> tuple[dict[str, Any], int]:
        before = self.statements
        response = await self.http.post(
            "/graphql", json={"query": EVERYTHING, "variables": {"first": first}}
        )
        body = response.json()
        assert "errors" not in body, body
        return body["data"]["salesOrders"], self.statements - before


@pytest.fixture
async def counting(database_url: str, engine: Any) -> AsyncIterator[CountingClient]:
    # Cost is not under test here: the page is deliberately as deep as the API goes.
    settings = Settings(_env_file=None, database_url=database_url, max_cost=10**7, auth="open")
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
        client = CountingClient(http)

        def count(_: str) -> None:
            client.statements += 1

        app.state.database.on_statement = count
        yield client
    await app.state.database.close()


async def add_orders(uow: UnitOfWorkFactory, start: int, stop: int) -> None:
    """Orders of 10 lines: nine allocated, one backordered (no stock); every other packed."""
    for index in range(start, stop):
        lines = [(f"SKU-{n}", 3) for n in range(LINES - 1)] + [("SHORT", 5)]
        order_id = await helpers.order(uow, *lines, number=f"SO-{index:04d}")
        await orders.allocate_order(uow, order_id)
        if index % 2 == 0:
            await orders.pack_allocated_order(uow, order_id, None)


async def stock_everything(uow: UnitOfWorkFactory) -> None:
    await helpers.location(uow, "BIN-1")
    for n in range(LINES - 1):
        await helpers.item(uow, f"SKU-{n}")
        await helpers.stock(uow, f"SKU-{n}", f"L{n}", "BIN-1", 3 * 50)
    await helpers.item(uow, "SHORT")


async def test_a_page_of_orders_costs_the_same_statements_for_5_as_for_50(
    uow: UnitOfWorkFactory,
    counting: CountingClient,
) -> None:
    await stock_everything(uow)
    await add_orders(uow, 0, 5)
    page, five = await counting.orders(50)
    assert page["totalCount"] == 5
    lines = page["edges"][0]["node"]["lines"]
    assert len(lines) == LINES
    assert all(line["allocations"] for line in lines[:-1])
    assert lines[-1]["backorders"][0]["quantity"] == 5
    assert all(line["packedLines"] for line in lines[:-1])

    await add_orders(uow, 5, 50)
    page, fifty = await counting.orders(50)
    assert page["totalCount"] == 50
    assert len(page["edges"]) == 50

    print(f"statements: {five} for 5 orders, {fifty} for 50")
    assert fifty == five, f"{five} statements for 5 orders but {fifty} for 50"
    assert five < 30  # one per kind and level, not one per row
