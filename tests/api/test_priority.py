"""Order priority over GraphQL: set on creation and by setSalesOrderPriority (a new
version, optimistic locking as every order change), bounded, and salesOrders by it."""

from __future__ import annotations

from typing import Any

from services import orders
from services.ports import UnitOfWorkFactory
from tests.conftest import GraphQLClient
from tests.service import helpers

CREATE = (
    'mutation($priority: Int!) { createSalesOrder(input: {customer: "C", priority: $priority,'
    " lines: []}) { salesOrder { id priority version } errors { code field message } } }"
)
SET = (
    "mutation($id: ID!, $priority: Int!, $v: Int) {"
    " setSalesOrderPriority(id: $id, priority: $priority, expectedVersion: $v) {"
    " salesOrder { id priority version updatedBy } errors { code field message currentVersion }"
    " } }"
)
PAGE = (
    "query($first: Int, $after: String, $last: Int, $before: String, $min: Int,"
    " $by: SalesOrderOrder!) { salesOrders(first: $first, after: $after, last: $last,"
    " before: $before, filter: {minPriority: $min}, orderBy: $by) { totalCount"
    " edges { cursor node { number priority } }"
    " pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"
)


async def test_an_order_is_created_with_the_priority_asked_or_0(
    gql: GraphQLClient, uow: UnitOfWorkFactory
) -> None:
    created = (await gql.data(CREATE, priority=7))["createSalesOrder"]
    assert created["errors"] == []
    assert created["salesOrder"]["priority"] == 7
    default = await gql.data('mutation { createSalesOrder(input: {customer: "C"}) {'
                             " salesOrder { priority } } }")  # fmt: skip
    assert default["createSalesOrder"]["salesOrder"]["priority"] == 0


async def test_a_priority_out_of_bounds_is_refused_and_nothing_is_made(
    gql: GraphQLClient,
) -> None:
    refused = (await gql.data(CREATE, priority=1001))["createSalesOrder"]
    assert refused["salesOrder"] is None
    [error] = refused["errors"]
    assert (error["code"], error["field"]) == ("INVALID_INPUT", ["input", "priority"])
    assert "-1000 and 1000" in error["message"]
    assert (await gql.data("{ salesOrders { totalCount } }"))["salesOrders"]["totalCount"] == 0


async def test_setting_the_priority_bumps_the_version_and_keeps_the_locking(
    gql: GraphQLClient, uow: UnitOfWorkFactory
) -> None:
    created = (await gql.data(CREATE, priority=0))["createSalesOrder"]["salesOrder"]
    order_id, version = created["id"], created["version"]

    changed = await gql.data(SET, id=order_id, priority=-1000, v=version)
    payload = changed["setSalesOrderPriority"]
    assert payload["errors"] == []
    assert payload["salesOrder"] == {
        "id": order_id, "priority": -1000, "version": version + 1, "updatedBy": "anonymous"
    }  # fmt: skip

    stale = (await gql.data(SET, id=order_id, priority=5, v=version))["setSalesOrderPriority"]
    assert stale["salesOrder"] is None
    [conflict] = stale["errors"]
    assert (conflict["code"], conflict["field"]) == ("VERSION_CONFLICT", ["expectedVersion"])
    assert conflict["currentVersion"] == version + 1

    bad = (await gql.data(SET, id=order_id, priority=-1001))["setSalesOrderPriority"]
    [error] = bad["errors"]
    assert (error["code"], error["field"]) == ("INVALID_INPUT", ["priority"])
    unknown = await gql.data(SET, id=_missing_order_id(order_id), priority=1)
    assert unknown["setSalesOrderPriority"]["errors"][0]["code"] == "NOT_FOUND"
    after = (await gql.data(SET, id=order_id, priority=3))["setSalesOrderPriority"]
    assert after["salesOrder"]["version"] == version + 2  # unchanged by the refusals


def _missing_order_id(order_id: str) -> str:
    import base64  # noqa: PLC0415 - only this helper makes ids

    kind, pk = base64.b64decode(order_id).decode().split(":")
    return base64.b64encode(f"{kind}:{int(pk) + 1000}".encode()).decode()


async def _orders_of_priorities(uow: UnitOfWorkFactory, priorities: list[int]) -> None:
    """SO-0, SO-1, ... created in this order, with these priorities."""
    for number, priority in enumerate(priorities):
        await orders.create_sales_order(uow, "C", f"SO-{number}", [], priority)


async def _walk(gql: GraphQLClient, **arguments: Any) -> list[str]:
    """Every order number, two a page, forwards (first/after) or backwards (last/before)."""
    backwards = "last" in arguments
    numbers: list[str] = []
    cursor = None
    while True:
        where = {"before": cursor} if backwards else {"after": cursor}
        found = (await gql.data(PAGE, **arguments, **where))["salesOrders"]
        page = [edge["node"]["number"] for edge in found["edges"]]
        numbers = page + numbers if backwards else numbers + page
        info = found["pageInfo"]
        if not (info["hasPreviousPage"] if backwards else info["hasNextPage"]):
            return numbers
        cursor = info["startCursor"] if backwards else info["endCursor"]


async def test_orders_by_priority_page_forwards_and_backwards_in_fill_order(
    gql: GraphQLClient, uow: UnitOfWorkFactory
) -> None:
    await _orders_of_priorities(uow, [0, 5, -3, 5, 0, 9, 5])
    fill_order = ["SO-5", "SO-1", "SO-3", "SO-6", "SO-0", "SO-4", "SO-2"]

    assert await _walk(gql, first=2, by="PRIORITY") == fill_order
    assert await _walk(gql, last=2, by="PRIORITY") == fill_order
    assert await _walk(gql, first=3, by="CREATED") == [f"SO-{n}" for n in range(7)]


async def test_min_priority_keeps_orders_of_at_least_that_priority(
    gql: GraphQLClient, uow: UnitOfWorkFactory
) -> None:
    await _orders_of_priorities(uow, [0, 5, -3, 5, 0, 9, 5])

    found = (await gql.data(PAGE, first=10, min=5, by="PRIORITY"))["salesOrders"]
    assert found["totalCount"] == 4
    assert [e["node"]["number"] for e in found["edges"]] == ["SO-5", "SO-1", "SO-3", "SO-6"]
    assert await _walk(gql, first=1, min=1, by="CREATED") == ["SO-1", "SO-3", "SO-5", "SO-6"]


async def test_a_stock_of_helpers_orders_default_to_priority_0(uow: UnitOfWorkFactory) -> None:
    await helpers.one_balance(uow, 1)
    order_id = await helpers.order(uow, ("WIDGET", 1))
    async with uow() as unit:
        order = await unit.orders.get(order_id)
    assert order is not None
    assert order.priority == 0
