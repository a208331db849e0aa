"""availableToPromise (SPEC section 9): an item's stock, narrowed by location and lot,
what its open backorders wait for and what can still be promised, in one statement.
The walk-through's figures after each step are checked in tests/api/test_walkthrough.py."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services import orders
from services.ports import UnitOfWorkFactory
from tests.conftest import GraphQLClient
from tests.service import helpers

PROMISE = """query Promise($sku: String!, $locationCode: String, $lotNumber: String) {
  availableToPromise(sku: $sku, locationCode: $locationCode, lotNumber: $lotNumber) {
    sku onHand allocated available openBackorderQuantity promisable
    byLocation { location { code } lot { lotNumber } onHand allocated available }
    byLot { location { code } lot { lotNumber item { sku } } onHand allocated available }
  }
}"""
FIGURES = ("onHand", "allocated", "available", "openBackorderQuantity", "promisable")


def figures(promise: dict[str, Any]) -> tuple[int, ...]:
    return tuple(promise[name] for name in FIGURES)


def by_location(promise: dict[str, Any]) -> list[tuple[str, int, int, int]]:
    assert all(s["lot"] is None for s in promise["byLocation"])
    return [
        (s["location"]["code"], s["onHand"], s["allocated"], s["available"])
        for s in promise["byLocation"]
    ]


def by_lot(promise: dict[str, Any]) -> list[tuple[str, int, int, int]]:
    assert all(s["location"] is None for s in promise["byLot"])
    return [
        (s["lot"]["lotNumber"], s["onHand"], s["allocated"], s["available"])
        for s in promise["byLot"]
    ]


async def promise(gql: GraphQLClient, sku: str, **narrowed: str) -> dict[str, Any]:
    found: dict[str, Any] = (await gql.data(PROMISE, sku=sku, **narrowed))["availableToPromise"]
    return found


async def stocked(uow: UnitOfWorkFactory) -> None:
    """BOLT: L1 (received 5th) at A-02 and B-01, L2 (received 3rd) at A-02; pick sequence
    B-01 1, A-02 2. Two orders want 12 and 30 of it, so 25 is allocated and 17
    backordered (one backorder of 17, the other order allocated in full)."""
    await helpers.item(uow, "BOLT")
    await helpers.location(uow, "A-02", 2)
    await helpers.location(uow, "B-01", 1)
    await helpers.location(uow, "C-03", 3)  # holds no bolt
    await helpers.stock(uow, "BOLT", "L1", "A-02", 10, received_day=5)
    await helpers.stock(uow, "BOLT", "L1", "B-01", 5, received_day=5)
    await helpers.stock(uow, "BOLT", "L2", "A-02", 10, received_day=3)
    for quantity in (12, 30):
        await orders.allocate_order(uow, await helpers.order(uow, ("BOLT", quantity)))


async def test_the_figures_and_breakdowns_of_an_item(
    gql: GraphQLClient, uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await stocked(uow)

    found = await promise(gql, "BOLT")

    assert found["sku"] == "BOLT"
    assert figures(found) == (25, 25, 0, 17, -17)
    # By pick sequence (B-01 before A-02); by receipt (L2 before L1).
    assert by_location(found) == [("B-01", 5, 5, 0), ("A-02", 20, 20, 0)]
    assert by_lot(found) == [("L2", 10, 10, 0), ("L1", 15, 15, 0)]
    assert {s["lot"]["item"]["sku"] for s in found["byLot"]} == {"BOLT"}


async def test_location_and_lot_narrow_the_stock_but_not_the_backorders(
    gql: GraphQLClient, uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await stocked(uow)
    await helpers.stock(uow, "BOLT", "L3", "A-02", 8, received_day=7)  # all available

    at_a02 = await promise(gql, "BOLT", locationCode="A-02")
    lot_1 = await promise(gql, "BOLT", lotNumber="L1")
    both = await promise(gql, "BOLT", locationCode="A-02", lotNumber="L1")
    none_there = await promise(gql, "BOLT", locationCode="C-03")

    # Item-wide: 33 on hand, 25 allocated, 8 available, 17 backordered: -9 promisable.
    assert figures(at_a02) == (28, 20, 8, 17, -9)
    assert by_location(at_a02) == [("A-02", 28, 20, 8)]
    assert by_lot(at_a02) == [("L2", 10, 10, 0), ("L1", 10, 10, 0), ("L3", 8, 0, 8)]
    assert figures(lot_1) == (15, 15, 0, 17, -9)
    assert by_location(lot_1) == [("B-01", 5, 5, 0), ("A-02", 10, 10, 0)]
    assert by_lot(lot_1) == [("L1", 15, 15, 0)]
    assert figures(both) == (10, 10, 0, 17, -9)
    assert (by_location(both), by_lot(both)) == ([("A-02", 10, 10, 0)], [("L1", 10, 10, 0)])
    assert figures(none_there) == (0, 0, 0, 17, -9)
    assert (none_there["byLocation"], none_there["byLot"]) == ([], [])


async def test_an_item_without_stock_or_backorders_has_nothing_to_promise(
    gql: GraphQLClient, uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.item(uow, "NUT")

    found = await promise(gql, "NUT")

    assert figures(found) == (0, 0, 0, 0, 0)
    assert (found["byLocation"], found["byLot"]) == ([], [])


async def test_only_open_backorders_count(
    gql: GraphQLClient, uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    """Of three backorders for 4, 6 and 9: one cancelled, one filled in part (2 of 6)."""
    await helpers.one_balance(uow, 0)
    ids = [await helpers.order(uow, ("WIDGET", n)) for n in (4, 6, 9)]
    for order_id in ids:
        await orders.allocate_order(uow, order_id)
    async with uow() as u:
        first = await u.orders.get(ids[0])
    assert first is not None
    assert first.backorders[0].id is not None
    await orders.cancel_backorder(uow, first.backorders[0].id)
    await helpers.stock(uow, "WIDGET", "L1", "BIN-1", 2)
    await orders.allocate_order(uow, ids[1])

    found = await promise(gql, "WIDGET")

    assert figures(found) == (2, 2, 0, 4 + 9, -13)


@pytest.mark.parametrize(
    ("narrowed", "field", "message"),
    [
        ({"sku": "NOPE"}, "sku", "Item 'NOPE' not found."),
        ({"sku": "BOLT", "locationCode": "Z-99"}, "locationCode", "Location 'Z-99' not found."),
        ({"sku": "BOLT", "lotNumber": "L9"}, "lotNumber", "Lot 'L9' of item 'BOLT' not found."),
    ],
)
async def test_an_unknown_sku_location_or_lot_is_not_found(
    gql: GraphQLClient,
    uow: UnitOfWorkFactory,
    engine: AsyncEngine,
    *,
    narrowed: dict[str, str],
    field: str,
    message: str,
) -> None:
    await stocked(uow)
    await helpers.item(uow, "NUT")
    await helpers.stock(uow, "NUT", "L9", "A-02", 1)  # another item's lot L9

    body = await gql.post(PROMISE, **narrowed)

    assert body["data"] is None
    [error] = body["errors"]
    assert error["message"] == message
    assert (error["extensions"]["code"], error["extensions"]["field"], error["path"]) == (
        "NOT_FOUND", [field], ["availableToPromise"]
    )  # fmt: skip


# -- one statement, whatever the stock ------------------------------------------------------


async def test_one_statement_for_1_balance_as_for_30_and_for_0_backorders_as_for_20(
    counted: tuple[GraphQLClient, list[str]], uow: UnitOfWorkFactory
) -> None:
    gql, sent = counted
    await helpers.one_balance(uow, 5)

    async def statements() -> tuple[int, dict[str, Any]]:
        sent.clear()
        found = await promise(gql, "WIDGET")
        return len(sent), found

    few, small = await statements()
    for place in range(1, 5):
        await helpers.location(uow, f"BIN-{place + 1}", place + 1)
    for lot in range(6):
        for place in range(5):
            if (lot, place) != (0, 0):
                await helpers.stock(uow, "WIDGET", f"L{lot + 1}", f"BIN-{place + 1}", 1)
    for _ in range(20):
        await orders.allocate_order(uow, await helpers.order(uow, ("WIDGET", 100)))
    many, large = await statements()

    assert (len(small["byLocation"]), len(small["byLot"]), small["openBackorderQuantity"]) == (
        1, 1, 0
    )  # fmt: skip
    assert (len(large["byLocation"]), len(large["byLot"])) == (5, 6)
    assert sum(s["onHand"] for s in large["byLocation"]) == 5 + 29
    assert large["openBackorderQuantity"] == 20 * 100 - (5 + 29)
    assert few == many == 1, sent
