"""allocateOrder over GraphQL: serialized lines skipped and reported while the rest is
allocated, and each strategy drawing the balances it must."""

from __future__ import annotations

from typing import Any

import pytest

from services.ports import UnitOfWorkFactory
from tests.conftest import GraphQLClient
from tests.service import helpers

ORDER_ID = "query($number: String!) { salesOrder(number: $number) { id } }"
ALLOCATE = """mutation($id: ID!, $strategy: AllocationStrategy) {
  allocateOrder(id: $id, strategy: $strategy) {
    salesOrder { version status lines {
      lineNumber quantity quantityAllocated quantityBackordered item { sku }
      allocations { quantity } backorders { quantity status } } }
    allocations { quantity lot { lotNumber } location { code }
                  salesOrderLine { lineNumber } }
    errors { code field message } } }"""


async def order_id(gql: GraphQLClient, number: str) -> str:
    found: dict[str, str] = (await gql.data(ORDER_ID, number=number))["salesOrder"]
    return found["id"]


async def allocate(gql: GraphQLClient, number: str, strategy: str | None = None) -> dict[str, Any]:
    data = await gql.data(ALLOCATE, id=await order_id(gql, number), strategy=strategy)
    payload: dict[str, Any] = data["allocateOrder"]
    return payload


async def test_a_serialized_line_is_reported_at_its_index_while_the_others_are_allocated(
    gql: GraphQLClient, uow: UnitOfWorkFactory
) -> None:
    await helpers.one_balance(uow, 10, sku="BOLT")
    await helpers.item(uow, "LAPTOP", serialized=True)
    await helpers.stock(uow, "LAPTOP", "SN-LOT", "BIN-1", 5)  # in stock, still never allocated
    await helpers.item(uow, "NUT")
    await helpers.stock(uow, "NUT", "N1", "BIN-1", 1)
    await helpers.order(uow, ("BOLT", 3), ("LAPTOP", 2), ("NUT", 2), number="SO-1")

    payload = await allocate(gql, "SO-1")  # GraphQLClient: HTTP 200

    [error] = payload["errors"]
    assert (error["code"], error["field"]) == ("SERIALIZED_ITEM", ["lines", "1"])
    assert "Line 2" in error["message"]
    # The one error that does not stop the mutation: the order is there, allocated.
    order = payload["salesOrder"]
    assert order is not None
    assert (order["version"], order["status"]) == (2, "PARTIALLY_ALLOCATED")
    assert [
        (ln["item"]["sku"], ln["quantityAllocated"], ln["quantityBackordered"])
        for ln in order["lines"]
    ] == [("BOLT", 3, 0), ("LAPTOP", 0, 0), ("NUT", 1, 1)]
    laptop = order["lines"][1]
    assert (laptop["allocations"], laptop["backorders"]) == ([], [])
    assert [(a["salesOrderLine"]["lineNumber"], a["quantity"]) for a in payload["allocations"]] == [
        (1, 3),
        (3, 1),
    ]


# Three balances of 5 where each strategy starts somewhere else (walking order is the
# location's pickSequence): received first, expires late, far away; received second,
# expires first, in the middle; received last, never expires, nearest.
STOCK = [
    ("OLDEST", "FAR", 30, 1, 28),
    ("EXPIRES-SOON", "MIDDLE", 20, 2, 3),
    ("NEAREST", "NEAR", 10, 3, None),
]


@pytest.mark.parametrize(
    ("strategy", "picks"),
    [
        # Earliest expiry first, no expiry last.
        (None, [("EXPIRES-SOON", "MIDDLE", 5), ("OLDEST", "FAR", 5), ("NEAREST", "NEAR", 2)]),
        ("FEFO", [("EXPIRES-SOON", "MIDDLE", 5), ("OLDEST", "FAR", 5), ("NEAREST", "NEAR", 2)]),
        # Earliest receipt first, expiry ignored.
        ("FIFO", [("OLDEST", "FAR", 5), ("EXPIRES-SOON", "MIDDLE", 5), ("NEAREST", "NEAR", 2)]),
        # Walking order.
        ("LOCATION", [("NEAREST", "NEAR", 5), ("EXPIRES-SOON", "MIDDLE", 5), ("OLDEST", "FAR", 2)]),
    ],
)
async def test_each_strategy_draws_the_balances_it_must_in_its_order(
    gql: GraphQLClient,
    uow: UnitOfWorkFactory,
    strategy: str | None,
    picks: list[tuple[str, str, int]],
) -> None:
    await helpers.item(uow, "WIDGET")
    for lot, code, sequence, received, expires in STOCK:
        await helpers.location(uow, code, sequence)
        await helpers.stock(uow, "WIDGET", lot, code, 5, received_day=received, expires_day=expires)
    await helpers.order(uow, ("WIDGET", 12), number="SO-1")

    payload = await allocate(gql, "SO-1", strategy)

    assert payload["errors"] == []
    drawn = [
        (a["lot"]["lotNumber"], a["location"]["code"], a["quantity"])
        for a in payload["allocations"]
    ]
    assert drawn == picks
    assert payload["salesOrder"]["status"] == "ALLOCATED"
