"""fillBackorders over GraphQL: the payload in fill order, with what the load checker
selects; its errors and their fields; and an Idempotency-Key replaying it."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from services import orders
from services.ports import UnitOfWorkFactory
from tests.conftest import GraphQLClient
from tests.ledger import unbalanced
from tests.service import helpers

FILL = """mutation($sku: String!, $limit: Int) { fillBackorders(sku: $sku, limit: $limit) {
  backorders { id status quantity quantityAllocated salesOrder { id number version } }
  allocations { id quantity salesOrderLine { id } balance { id allocated } salesOrder { id } }
  errors { code field message } } }"""


async def three_waiting_orders(uow: UnitOfWorkFactory) -> None:
    """LOW (priority 0), then URGENT-1 and URGENT-2 (priority 5), each waiting for 4
    WIDGET; then 6 received."""
    await helpers.one_balance(uow, 0)
    for number, priority in (("LOW", 0), ("URGENT-1", 5), ("URGENT-2", 5)):
        order_id = await orders.create_sales_order(
            uow, "C", number, [orders.LineInput("WIDGET", 4)], priority
        )
        await orders.allocate_order(uow, order_id)
    await helpers.stock(uow, "WIDGET", "L1", "BIN-1", 6)


async def test_a_fill_answers_the_backorders_and_allocation_lines_in_fill_order(
    gql: GraphQLClient, uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await three_waiting_orders(uow)

    payload = (await gql.data(FILL, sku="WIDGET"))["fillBackorders"]

    assert payload["errors"] == []
    backorders = payload["backorders"]
    assert [
        (b["salesOrder"]["number"], b["status"], b["quantityAllocated"]) for b in backorders
    ] == [
        ("URGENT-1", "ALLOCATED", 4),
        ("URGENT-2", "OPEN", 2),
    ]
    assert [b["salesOrder"]["version"] for b in backorders] == [3, 3]
    allocations = payload["allocations"]
    assert [a["quantity"] for a in allocations] == [4, 2]
    assert [a["salesOrder"]["id"] for a in allocations] == [
        b["salesOrder"]["id"] for b in backorders
    ]
    assert {a["balance"]["allocated"] for a in allocations} == {6}
    assert await unbalanced(engine) == []
    again = (await gql.data(FILL, sku="WIDGET"))["fillBackorders"]
    assert (again["backorders"], again["allocations"], again["errors"]) == ([], [], [])


async def test_an_unknown_sku_and_a_bad_limit_name_their_argument(
    gql: GraphQLClient, uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 1)
    unknown = (await gql.data(FILL, sku="NOPE"))["fillBackorders"]
    assert [(e["code"], e["field"]) for e in unknown["errors"]] == [("NOT_FOUND", ["sku"])]
    for limit in (0, 201):
        bad = (await gql.data(FILL, sku="WIDGET", limit=limit))["fillBackorders"]
        [error] = bad["errors"]
        assert (error["code"], error["field"]) == ("INVALID_INPUT", ["limit"])
        assert error["message"] == "Limit must be between 1 and 200."


async def test_a_fill_sent_again_with_its_key_is_replayed_not_run_again(
    client: httpx.AsyncClient, uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await three_waiting_orders(uow)
    body = {"query": FILL, "variables": {"sku": "WIDGET", "limit": 1}}

    first = await client.post("/graphql", json=body, headers={"Idempotency-Key": "fill-1"})
    again = await client.post("/graphql", json=body, headers={"Idempotency-Key": "fill-1"})

    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    # Run again without the key, the same call fills the next backorder in line.
    fresh = await client.post("/graphql", json=body)
    [backorder] = fresh.json()["data"]["fillBackorders"]["backorders"]
    assert backorder["salesOrder"]["number"] == "URGENT-2"
