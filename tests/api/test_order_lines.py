"""Order lines over GraphQL: deleting one, and a stale expectedVersion on adding or
deleting one. Set-ups go through the use cases; the calls under test through HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from services import orders
from services.ports import UnitOfWorkFactory
from tests.conftest import GraphQLClient
from tests.service import helpers

ORDER_FIELDS = """
  id version status
  lines { id lineNumber quantity quantityAllocated quantityBackordered item { sku available }
          allocations { id quantity } backorders { id quantity quantityAllocated status } }
"""
ORDER = "query($number: String!) { salesOrder(number: $number) {" + ORDER_FIELDS + "} }"
DELETE_LINE = (
    "mutation($id: ID!, $v: Int) { deleteSalesOrderLine(id: $id, expectedVersion: $v) {"
    " salesOrder {" + ORDER_FIELDS + "} errors { code field message currentVersion } } }"
)
ADD_LINE = (
    "mutation($order: ID!, $sku: String!, $quantity: Int!, $v: Int) {"
    " addSalesOrderLine(salesOrderId: $order, sku: $sku, quantity: $quantity,"
    " expectedVersion: $v) {"
    " salesOrder {" + ORDER_FIELDS + "} errors { code field message currentVersion } } }"
)
BACKORDERS = "{ backorders { totalCount nodes { id } } }"
NODE = "query($id: ID!) { node(id: $id) { id } }"


async def order_with_a_backordered_line(uow: UnitOfWorkFactory) -> None:
    """SO-1: line 1 WIDGET x 3, allocated in full; line 2 NUT x 4, none in stock, so
    backordered in full. Allocated once: version 2."""
    await helpers.one_balance(uow, 3)
    await helpers.item(uow, "NUT")
    order_id = await helpers.order(uow, ("WIDGET", 3), ("NUT", 4), number="SO-1")
    await orders.allocate_order(uow, order_id)


async def read_order(gql: GraphQLClient) -> dict[str, Any]:
    order: dict[str, Any] = (await gql.data(ORDER, number="SO-1"))["salesOrder"]
    assert order is not None
    return order


async def test_deleting_a_line_removes_it_and_its_backorders(
    gql: GraphQLClient, uow: UnitOfWorkFactory
) -> None:
    await order_with_a_backordered_line(uow)
    before = await read_order(gql)
    widget, nut = before["lines"]
    [backorder] = nut["backorders"]
    assert (backorder["quantity"], backorder["status"]) == (4, "OPEN")
    assert (before["version"], before["status"]) == (2, "PARTIALLY_ALLOCATED")

    payload = (await gql.data(DELETE_LINE, id=nut["id"]))["deleteSalesOrderLine"]

    assert payload["errors"] == []
    after = payload["salesOrder"]
    assert after["lines"] == [widget]
    # Nothing is missing any more: the rest is allocated in full.
    assert (after["version"], after["status"]) == (3, "ALLOCATED")
    assert await read_order(gql) == after
    assert (await gql.data(NODE, id=nut["id"]))["node"] is None
    assert (await gql.data(NODE, id=backorder["id"]))["node"] is None
    assert (await gql.data(BACKORDERS))["backorders"] == {"totalCount": 0, "nodes": []}


async def test_deleting_a_line_with_allocation_lines_is_refused_and_changes_nothing(
    gql: GraphQLClient, uow: UnitOfWorkFactory
) -> None:
    await order_with_a_backordered_line(uow)
    before = await read_order(gql)
    widget = before["lines"][0]
    assert [a["quantity"] for a in widget["allocations"]] == [3]

    payload = (await gql.data(DELETE_LINE, id=widget["id"]))["deleteSalesOrderLine"]

    assert payload["salesOrder"] is None
    [error] = payload["errors"]
    assert (error["code"], error["field"]) == ("LINE_HAS_ALLOCATIONS", ["id"])
    assert await read_order(gql) == before


@pytest.mark.parametrize("mutation", ["addSalesOrderLine", "deleteSalesOrderLine"])
async def test_a_stale_expected_version_on_a_line_change_is_a_conflict_and_changes_nothing(
    gql: GraphQLClient, uow: UnitOfWorkFactory, mutation: str
) -> None:
    await order_with_a_backordered_line(uow)
    before = await read_order(gql)
    assert before["version"] == 2

    async def change(version: int) -> dict[str, Any]:
        if mutation == "addSalesOrderLine":
            body = await gql.data(ADD_LINE, order=before["id"], sku="WIDGET", quantity=1, v=version)
        else:
            body = await gql.data(DELETE_LINE, id=before["lines"][1]["id"], v=version)
        payload: dict[str, Any] = body[mutation]
        return payload

    refused = await change(1)  # the version the order had before it was allocated

    assert refused["salesOrder"] is None
    [error] = refused["errors"]
    assert (error["code"], error["field"], error["currentVersion"]) == (
        "VERSION_CONFLICT",
        ["expectedVersion"],
        2,
    )
    assert await read_order(gql) == before
    # The same change with the current version goes through: only the version was wrong.
    accepted = await change(2)
    assert accepted["errors"] == []
    assert accepted["salesOrder"]["version"] == 3
