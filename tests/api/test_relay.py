"""Relay: global ids with node/nodes, and connections paged both ways with caps."""

from __future__ import annotations

from typing import Any

from resolvers.ids import to_global_id
from services import orders
from services.ports import UnitOfWorkFactory
from tests.conftest import GraphQLClient
from tests.service import helpers

PAGE = """query($first: Int, $after: String, $last: Int, $before: String) {
  items(first: $first, after: $after, last: $last, before: $before) {
    totalCount edges { cursor node { sku } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""
NODES = """query($ids: [ID!]!) {
  nodes(ids: $ids) { __typename id ... on Item { sku } ... on Location { code } } }"""
INVENTORY = """query($sku: String, $code: String, $inStock: Boolean!) {
  inventory(sku: $sku, locationCode: $code, inStockOnly: $inStock) {
    totalCount nodes { onHand available lot { lotNumber } location { code } item { sku } } } }"""
ORDERS = """query($filter: SalesOrderFilter) {
  salesOrders(filter: $filter) { totalCount nodes { number status customer } } }"""


async def skus(uow: UnitOfWorkFactory, count: int) -> None:
    for n in range(count):
        await helpers.item(uow, f"SKU-{n:02d}")


def names(page: dict[str, Any]) -> list[str]:
    return [edge["node"]["sku"] for edge in page["edges"]]


async def test_paging_forward_visits_every_item_once_in_a_stable_order(
    gql: GraphQLClient,
    uow: UnitOfWorkFactory,
) -> None:
    await skus(uow, 7)
    seen: list[str] = []
    after = None
    while True:
        page = (await gql.data(PAGE, first=3, after=after))["items"]
        assert page["totalCount"] == 7
        seen += names(page)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [f"SKU-{n:02d}" for n in range(7)]


async def test_paging_backward_from_a_cursor_gives_the_rows_just_before_it(
    gql: GraphQLClient,
    uow: UnitOfWorkFactory,
) -> None:
    await skus(uow, 7)
    everything = (await gql.data(PAGE, first=7))["items"]
    cursor_of_sixth = everything["edges"][5]["cursor"]

    page = (await gql.data(PAGE, last=2, before=cursor_of_sixth))["items"]
    assert names(page) == ["SKU-03", "SKU-04"]
    assert page["pageInfo"]["hasPreviousPage"] is True
    assert page["pageInfo"]["hasNextPage"] is True

    last_page = (await gql.data(PAGE, last=3))["items"]
    assert names(last_page) == ["SKU-04", "SKU-05", "SKU-06"]
    assert last_page["pageInfo"]["hasNextPage"] is False

    first_page = (await gql.data(PAGE, last=5, before=everything["edges"][2]["cursor"]))["items"]
    assert names(first_page) == ["SKU-00", "SKU-01"]
    assert first_page["pageInfo"]["hasPreviousPage"] is False


async def test_page_sizes_over_100_and_garbled_cursors_are_clear_errors(
    gql: GraphQLClient,
) -> None:
    for variables in (
        {"first": 101},
        {"last": 101},
        {"first": -1},
        {"first": 2, "last": 2},
        {"after": "bm90LWEtY3Vyc29y"},
    ):
        body = await gql.post(PAGE, **variables)
        assert body["data"] is None
        [error] = body["errors"]
        assert error["extensions"]["code"] == "INVALID_INPUT", variables
        assert "Unexpected" not in error["message"]


async def test_node_and_nodes_fetch_any_object_by_its_global_id(
    gql: GraphQLClient,
    uow: UnitOfWorkFactory,
) -> None:
    item_id = await helpers.item(uow, "BOLT")
    location_id = await helpers.location(uow, "A-01")
    ids = [
        to_global_id("Location", location_id),
        to_global_id("Item", 999),
        to_global_id("Item", item_id),
        "garbage",
    ]
    found = (await gql.data(NODES, ids=ids))["nodes"]
    assert found[0] == {"__typename": "Location", "id": ids[0], "code": "A-01"}
    assert found[1] is None
    assert found[2] == {"__typename": "Item", "id": ids[2], "sku": "BOLT"}
    assert found[3] is None

    body = await gql.post(NODES, ids=[ids[0]] * 101)
    assert body["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


async def test_inventory_filters_by_item_location_and_stock(
    gql: GraphQLClient,
    uow: UnitOfWorkFactory,
) -> None:
    await helpers.item(uow, "BOLT")
    await helpers.item(uow, "NUT")
    await helpers.location(uow, "A-01")
    await helpers.location(uow, "A-02")
    await helpers.stock(uow, "BOLT", "B1", "A-01", 5)
    await helpers.stock(uow, "BOLT", "B2", "A-02", 7)
    await helpers.stock(uow, "NUT", "N1", "A-01", 3)
    await helpers.stock(uow, "NUT", "N1", "A-01", -3)

    bolts = (await gql.data(INVENTORY, sku="BOLT", inStock=False))["inventory"]
    assert [(n["lot"]["lotNumber"], n["onHand"]) for n in bolts["nodes"]] == [("B1", 5), ("B2", 7)]
    at_a01 = (await gql.data(INVENTORY, code="A-01", inStock=False))["inventory"]
    assert sorted(n["item"]["sku"] for n in at_a01["nodes"]) == ["BOLT", "NUT"]
    in_stock = (await gql.data(INVENTORY, code="A-01", inStock=True))["inventory"]
    assert [n["item"]["sku"] for n in in_stock["nodes"]] == ["BOLT"]
    assert in_stock["totalCount"] == 1


async def test_orders_filter_by_status_customer_and_sku(
    gql: GraphQLClient,
    uow: UnitOfWorkFactory,
) -> None:
    await helpers.one_balance(uow, 10)
    await helpers.item(uow, "NUT")
    first = await helpers.order(uow, ("WIDGET", 4), number="SO-A")
    await helpers.order(uow, ("NUT", 1), number="SO-B")
    await orders.allocate_order(uow, first)

    async def numbers(**filter_: Any) -> list[str]:
        found = (await gql.data(ORDERS, filter=filter_))["salesOrders"]["nodes"]
        return [order["number"] for order in found]

    assert await numbers(status="ALLOCATED") == ["SO-A"]
    assert await numbers(status="OPEN") == ["SO-B"]
    assert await numbers(sku="NUT") == ["SO-B"]
    assert await numbers(customer="Customer") == ["SO-A", "SO-B"]
    assert await numbers(customer="Nobody") == []
    assert await numbers(createdAfter="2000-01-01T00:00:00Z") == ["SO-A", "SO-B"]
    assert await numbers(createdBefore="2000-01-01T00:00:00Z") == []


async def test_a_cursor_only_pages_the_connection_that_gave_it(
    gql: GraphQLClient,
    uow: UnitOfWorkFactory,
) -> None:
    await skus(uow, 2)
    cursor = (await gql.data(PAGE, first=1))["items"]["pageInfo"]["endCursor"]
    body = await gql.post(
        "query($after: String) { backorders(after: $after) { totalCount } }", after=cursor
    )
    assert body["errors"][0]["message"] == "That is not a cursor this connection gave out."
