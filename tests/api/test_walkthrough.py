"""SPEC section 2, steps 1 to 12, through GraphQL over HTTP against real PostgreSQL."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import AppClient, GraphQLClient
from tests.ledger import unbalanced

ORDER = """
fragment Order on SalesOrder {
  id version status
  lines {
    id lineNumber quantity quantityAllocated quantityPacked quantityBackordered
    quantityCancelled item { sku available }
    allocations { id name quantity quantityPacked lot { lotNumber } location { code } }
    backorders { id name quantity quantityAllocated status }
    packedLines { quantity allocations { id } }
  }
}
"""
CREATE_ITEM = """mutation($input: CreateItemInput!) {
  createItem(input: $input) { item { id sku serialized } errors { code } } }"""
CREATE_LOCATION = """mutation($input: CreateLocationInput!) {
  createLocation(input: $input) { location { code } errors { code } } }"""
ADJUST = """mutation($input: AdjustInventoryInput!) {
  adjustInventory(input: $input) {
    balance { onHand allocated available lot { lotNumber } location { code } }
    adjustment { quantity reason }
    errors { code } } }"""
CREATE_ORDER = (
    ORDER
    + """mutation($input: CreateSalesOrderInput!) {
  createSalesOrder(input: $input) { salesOrder { ...Order } errors { code } } }"""
)
ALLOCATE = (
    ORDER
    + """mutation($id: ID!) {
  allocateOrder(id: $id) {
    salesOrder { ...Order } allocations { id quantity lot { lotNumber } }
    errors { code field message } } }"""
)
PACK = (
    ORDER
    + """mutation($id: ID!) {
  packAllocatedOrder(id: $id) {
    salesOrder { ...Order } packedLines { quantity salesOrderLine { lineNumber } }
    errors { code } } }"""
)
REMOVE = (
    ORDER
    + """mutation($ids: [ID!]!) {
  removeAllocationLines(ids: $ids) { salesOrder { ...Order } removedIds errors { code } } }"""
)
UPDATE_LINE = (
    ORDER
    + """mutation($id: ID!, $quantity: Int!) {
  updateSalesOrderLine(id: $id, quantity: $quantity) {
    salesOrder { ...Order } errors { code } } }"""
)
CANCEL = (
    ORDER
    + """mutation($id: ID!) {
  cancelBackorder(id: $id, reason: "customer will not wait") {
    backorder { status quantity quantityAllocated cancelReason }
    salesOrder { ...Order } errors { code } } }"""
)
DELETE = (
    ORDER
    + """mutation($id: ID!) {
  deleteBackorder(id: $id) { backorder { id } salesOrder { ...Order } errors { code } } }"""
)
ITEM = "query($sku: String!) { item(sku: $sku) { onHand allocated available } }"
PROMISE = """fragment Figures on AvailableToPromise {
  onHand allocated available openBackorderQuantity promisable }
query { brass: availableToPromise(sku: "BRASS-SCREW") { ...Figures }
        tap: availableToPromise(sku: "SELF-TAP-SCREW") { ...Figures } }"""
Figures = tuple[int, int, int, int, int]  # on hand, allocated, available, backordered, promisable


def line(order: dict[str, Any], number: int) -> dict[str, Any]:
    found: list[dict[str, Any]] = [ln for ln in order["lines"] if ln["lineNumber"] == number]
    assert len(found) == 1
    return found[0]


def picks(order_line: dict[str, Any]) -> list[tuple[str, str, int]]:
    return [
        (a["lot"]["lotNumber"], a["location"]["code"], a["quantity"])
        for a in order_line["allocations"]
    ]


async def mutate(gql: GraphQLClient, document: str, field: str, **variables: Any) -> dict[str, Any]:
    payload: dict[str, Any] = (await gql.data(document, **variables))[field]
    assert payload["errors"] == [], payload["errors"]
    return payload


async def adjust(
    gql: GraphQLClient, sku: str, lot: str, location: str, quantity: int, **extra: Any
) -> dict[str, Any]:
    return await mutate(
        gql,
        ADJUST,
        "adjustInventory",
        input={
            "sku": sku,
            "lotNumber": lot,
            "locationCode": location,
            "quantity": quantity,
            "reason": extra.pop("reason", "receipt"),
            **extra,
        },
    )


def figures(found: dict[str, int]) -> Figures:
    return (
        found["onHand"], found["allocated"], found["available"], found["openBackorderQuantity"],
        found["promisable"],
    )  # fmt: skip


async def promised(gql: GraphQLClient) -> tuple[Figures, Figures]:
    """availableToPromise of Brass Screw and of Self-Tapping Screw."""
    found = await gql.data(PROMISE)
    return figures(found["brass"]), figures(found["tap"])


async def stock(gql: GraphQLClient, sku: str) -> dict[str, int]:
    item: dict[str, int] = (await gql.data(ITEM, sku=sku))["item"]
    return item


async def test_the_walkthrough(gql: GraphQLClient, engine: AsyncEngine) -> None:
    # 1. Items and stock: B1 received before B2.
    for sku, name in (("BRASS-SCREW", "Brass Screw"), ("SELF-TAP-SCREW", "Self-Tapping Screw")):
        item = await mutate(
            gql, CREATE_ITEM, "createItem", input={"sku": sku, "name": name, "serialized": False}
        )
        assert item["item"]["sku"] == sku
    for sequence, code in enumerate(("A-01", "A-02", "A-03"), start=1):
        await mutate(
            gql,
            CREATE_LOCATION,
            "createLocation",
            input={"code": code, "name": code, "pickSequence": sequence},
        )
    await adjust(gql, "BRASS-SCREW", "B1", "A-01", 15, receivedAt="2026-01-05T08:00:00Z")
    await adjust(gql, "BRASS-SCREW", "B2", "A-02", 20, receivedAt="2026-01-10T08:00:00Z")
    await adjust(gql, "SELF-TAP-SCREW", "S1", "A-03", 22, receivedAt="2026-01-05T08:00:00Z")
    assert await stock(gql, "BRASS-SCREW") == {"onHand": 35, "allocated": 0, "available": 35}
    # availableToPromise after each step (SPEC section 9): the figures the step leaves.
    assert await promised(gql) == ((35, 0, 35, 0, 35), (22, 0, 22, 0, 22))

    # 2. The order.
    created = await mutate(
        gql,
        CREATE_ORDER,
        "createSalesOrder",
        input={
            "customer": "Acme Fasteners",
            "lines": [
                {"sku": "BRASS-SCREW", "quantity": 25},
                {"sku": "SELF-TAP-SCREW", "quantity": 25},
            ],
        },
    )
    order_id = created["salesOrder"]["id"]
    assert created["salesOrder"]["status"] == "OPEN"
    assert await promised(gql) == ((35, 0, 35, 0, 35), (22, 0, 22, 0, 22))

    # 3. Allocate: brass 15 + 10 from B1 then B2; self-tapping 22 and a backorder of 3.
    allocated = await mutate(gql, ALLOCATE, "allocateOrder", id=order_id)
    order = allocated["salesOrder"]
    assert picks(line(order, 1)) == [("B1", "A-01", 15), ("B2", "A-02", 10)]
    assert picks(line(order, 2)) == [("S1", "A-03", 22)]
    assert [a["quantity"] for a in allocated["allocations"]] == [15, 10, 22]
    assert line(order, 1)["backorders"] == []
    [backorder] = line(order, 2)["backorders"]
    assert (backorder["quantity"], backorder["quantityAllocated"], backorder["status"]) == (
        3,
        0,
        "OPEN",
    )
    assert line(order, 2)["quantityBackordered"] == 3
    assert order["status"] == "PARTIALLY_ALLOCATED"
    # The backorder of 3 waits for stock that is not there: 3 less than none to promise.
    assert await promised(gql) == ((35, 25, 10, 0, 10), (22, 22, 0, 3, -3))

    # 4. Pack: packed lines of 25 and 22; each allocation records its packed quantity.
    packed = await mutate(gql, PACK, "packAllocatedOrder", id=order_id)
    assert sorted(
        (p["salesOrderLine"]["lineNumber"], p["quantity"]) for p in packed["packedLines"]
    ) == [(1, 25), (2, 22)]
    order = packed["salesOrder"]
    packed_quantities = [
        [(a["quantity"], a["quantityPacked"]) for a in line(order, number)["allocations"]]
        for number in (1, 2)
    ]
    assert packed_quantities == [[(15, 15), (10, 10)], [(22, 22)]]
    assert [line(order, n)["quantityPacked"] for n in (1, 2)] == [25, 22]
    # The backorder for 3 remains open.
    [backorder] = line(order, 2)["backorders"]
    assert (backorder["quantity"], backorder["quantityAllocated"], backorder["status"]) == (
        3,
        0,
        "OPEN",
    )
    assert line(order, 2)["quantityBackordered"] == 3
    assert order["status"] == "PARTIALLY_PACKED"
    assert await stock(gql, "BRASS-SCREW") == {"onHand": 10, "allocated": 0, "available": 10}
    assert await stock(gql, "SELF-TAP-SCREW") == {"onHand": 0, "allocated": 0, "available": 0}
    assert await promised(gql) == ((10, 0, 10, 0, 10), (0, 0, 0, 3, -3))

    # 5. +100 self-tapping screws in lot S2 at A-03.
    received = await adjust(gql, "SELF-TAP-SCREW", "S2", "A-03", 100)
    assert received["balance"]["onHand"] == 100
    assert received["adjustment"] == {"quantity": 100, "reason": "receipt"}
    assert await promised(gql) == ((10, 0, 10, 0, 10), (100, 0, 100, 3, 97))

    # 6. Allocate again: a new allocation line for 3; the backorder is checked off.
    allocated = await mutate(gql, ALLOCATE, "allocateOrder", id=order_id)
    assert [(a["quantity"], a["lot"]["lotNumber"]) for a in allocated["allocations"]] == [(3, "S2")]
    [backorder] = line(allocated["salesOrder"], 2)["backorders"]
    assert (backorder["quantity"], backorder["quantityAllocated"], backorder["status"]) == (
        3,
        3,
        "ALLOCATED",
    )
    assert line(allocated["salesOrder"], 2)["quantityBackordered"] == 0
    assert await promised(gql) == ((10, 0, 10, 0, 10), (100, 3, 97, 0, 97))

    # 7. Pack again: another packed line of 3; that allocation line shows 3 packed.
    packed = await mutate(gql, PACK, "packAllocatedOrder", id=order_id)
    assert [p["quantity"] for p in packed["packedLines"]] == [3]
    new_allocation = next(
        a for a in line(packed["salesOrder"], 2)["allocations"] if a["lot"]["lotNumber"] == "S2"
    )
    assert new_allocation["quantityPacked"] == 3
    assert packed["salesOrder"]["status"] == "PACKED"
    assert [p["quantity"] for p in line(packed["salesOrder"], 2)["packedLines"]] == [22, 3]
    assert await promised(gql) == ((10, 0, 10, 0, 10), (97, 0, 97, 0, 97))

    # 8. Five damaged brass screws written off in B2 at A-02: five remain available.
    damaged = await adjust(gql, "BRASS-SCREW", "B2", "A-02", -5, reason="damaged")
    assert damaged["balance"]["onHand"] == 5
    assert (await stock(gql, "BRASS-SCREW"))["available"] == 5
    assert await promised(gql) == ((5, 0, 5, 0, 5), (97, 0, 97, 0, 97))

    # 9. A second order, allocated in full, then all its allocation lines removed.
    second = await mutate(
        gql,
        CREATE_ORDER,
        "createSalesOrder",
        input={
            "customer": "Bolt & Co",
            "lines": [
                {"sku": "BRASS-SCREW", "quantity": 4},
                {"sku": "SELF-TAP-SCREW", "quantity": 10},
            ],
        },
    )
    second_id = second["salesOrder"]["id"]
    allocated = await mutate(gql, ALLOCATE, "allocateOrder", id=second_id)
    order = allocated["salesOrder"]
    assert [line(order, n)["quantityAllocated"] for n in (1, 2)] == [4, 10]
    assert order["status"] == "ALLOCATED"
    assert (await stock(gql, "BRASS-SCREW"))["available"] == 1
    assert [a["quantity"] for a in allocated["allocations"]] == [4, 10]
    assert await promised(gql) == ((5, 4, 1, 0, 1), (97, 10, 87, 0, 87))
    ids = [a["id"] for a in allocated["allocations"]]
    removed = await mutate(gql, REMOVE, "removeAllocationLines", ids=ids)
    assert removed["removedIds"] == ids
    assert [ln["allocations"] for ln in removed["salesOrder"]["lines"]] == [[], []]
    assert (await stock(gql, "BRASS-SCREW"))["available"] == 5
    assert await promised(gql) == ((5, 0, 5, 0, 5), (97, 0, 97, 0, 97))
    assert (await stock(gql, "SELF-TAP-SCREW"))["available"] == 97

    # 10. Brass raised to 10: 5 allocated and a backorder for 5; self-tapping in full.
    brass_line = line(removed["salesOrder"], 1)["id"]
    updated = await mutate(gql, UPDATE_LINE, "updateSalesOrderLine", id=brass_line, quantity=10)
    assert line(updated["salesOrder"], 1)["quantity"] == 10
    assert await promised(gql) == ((5, 0, 5, 0, 5), (97, 0, 97, 0, 97))
    allocated = await mutate(gql, ALLOCATE, "allocateOrder", id=second_id)
    order = allocated["salesOrder"]
    assert line(order, 1)["quantityAllocated"] == 5
    [backorder] = line(order, 1)["backorders"]
    assert (backorder["quantity"], backorder["status"]) == (5, "OPEN")
    assert line(order, 2)["quantityAllocated"] == 10
    assert line(order, 2)["backorders"] == []
    assert await promised(gql) == ((5, 5, 0, 5, -5), (97, 10, 87, 0, 87))

    # 11. Remove every allocation line: they are gone, the backorder for 5 remains.
    assert [a["quantity"] for a in allocated["allocations"]] == [5, 10]
    removed = await mutate(
        gql, REMOVE, "removeAllocationLines", ids=[a["id"] for a in allocated["allocations"]]
    )
    order = removed["salesOrder"]
    assert [ln["allocations"] for ln in order["lines"]] == [[], []]
    [backorder] = line(order, 1)["backorders"]
    assert (backorder["quantity"], backorder["status"]) == (5, "OPEN")
    assert await promised(gql) == ((5, 0, 5, 5, 0), (97, 0, 97, 0, 97))

    # 12. Cancel it: CANCELLED, and allocating again does not re-create it.
    cancelled = await mutate(gql, CANCEL, "cancelBackorder", id=backorder["id"])
    assert cancelled["backorder"]["status"] == "CANCELLED"
    assert cancelled["backorder"]["cancelReason"] == "customer will not wait"
    assert line(cancelled["salesOrder"], 1)["quantityCancelled"] == 5
    assert await promised(gql) == ((5, 0, 5, 0, 5), (97, 0, 97, 0, 97))
    allocated = await mutate(gql, ALLOCATE, "allocateOrder", id=second_id)
    brass = line(allocated["salesOrder"], 1)
    assert brass["quantityAllocated"] == 5
    assert [b["status"] for b in brass["backorders"]] == ["CANCELLED"]
    assert brass["quantityBackordered"] == 0
    assert await promised(gql) == ((5, 5, 0, 0, 0), (97, 10, 87, 0, 87))

    await the_ledger_accounts_for_every_step(gql, engine)


LEDGER = """query($after: String) { movements(first: 100, after: $after) {
  pageInfo { hasNextPage endCursor }
  nodes { kind onHandDelta allocatedDelta actor reason requestId allocationName
          balance { id onHand allocated lot { lotNumber } } } } }"""
ACTORS = """{ salesOrders(first: 10) { nodes { actor updatedBy
  allocations { actor } packedLines { actor } backorders { status cancelledBy } } } }"""


async def the_ledger_accounts_for_every_step(gql: GraphQLClient, engine: AsyncEngine) -> None:
    """After the walk-through: what moved each balance, and who changed what."""
    movements: list[dict[str, Any]] = []
    after = None
    while True:
        page = (await gql.data(LEDGER, after=after))["movements"]
        movements += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    kinds = [(m["kind"], m["balance"]["lot"]["lotNumber"], m["onHandDelta"], m["allocatedDelta"])
             for m in reversed(movements)]  # fmt: skip
    assert kinds[:5] == [
        ("RECEIPT", "B1", 15, 0), ("RECEIPT", "B2", 20, 0), ("RECEIPT", "S1", 22, 0),
        ("ALLOCATE", "B1", 0, 15), ("ALLOCATE", "B2", 0, 10),
    ]  # fmt: skip
    assert ("WRITE_OFF", "B2", -5, 0) in kinds
    assert [k for k in kinds if k[0] == "PACK"] == [
        ("PACK", "B1", -15, -15), ("PACK", "B2", -10, -10), ("PACK", "S1", -22, -22),
        ("PACK", "S2", -3, -3),
    ]  # fmt: skip
    deallocated = [m for m in movements if m["kind"] == "DEALLOCATE"]
    assert len(deallocated) == 4  # steps 9 and 11, two lines each
    assert all(m["allocationName"].startswith("AL-") for m in deallocated)
    # Every balance is the sum of its movements.
    by_balance: dict[str, list[int]] = {}
    for m in movements:
        sums = by_balance.setdefault(m["balance"]["id"], [0, 0, 0, 0])
        sums[0] += m["onHandDelta"]
        sums[1] += m["allocatedDelta"]
        sums[2:] = [m["balance"]["onHand"], m["balance"]["allocated"]]
    assert all(s[:2] == s[2:] for s in by_balance.values()), by_balance
    assert await unbalanced(engine) == []
    # Open mode (the test client sends no credential): the actor of every step.
    assert {m["actor"] for m in movements} == {"anonymous"}
    # Each movement names the request that made it: the test client sends no
    # X-Request-Id, so the server's own (32 hex digits), one per request.
    assert all(re.fullmatch(r"[0-9a-f]{32}", m["requestId"]) for m in movements), movements
    assert len({m["requestId"] for m in movements}) > 1
    orders = (await gql.data(ACTORS))["salesOrders"]["nodes"]
    assert {(o["actor"], o["updatedBy"]) for o in orders} == {("anonymous", "anonymous")}
    assert {a["actor"] for o in orders for a in o["allocations"]} == {"anonymous"}
    assert {p["actor"] for o in orders for p in o["packedLines"]} == {"anonymous"}
    assert [
        b["cancelledBy"] for o in orders for b in o["backorders"] if b["status"] == "CANCELLED"
    ] == ["anonymous"]


async def test_a_deleted_backorder_is_recreated_while_the_line_is_short(
    gql: GraphQLClient,
) -> None:
    await mutate(gql, CREATE_ITEM, "createItem", input={"sku": "NUT", "name": "Nut"})
    await mutate(gql, CREATE_LOCATION, "createLocation", input={"code": "B-01", "name": "B"})
    await adjust(gql, "NUT", "N1", "B-01", 4)
    created = await mutate(
        gql,
        CREATE_ORDER,
        "createSalesOrder",
        input={"customer": "Acme", "lines": [{"sku": "NUT", "quantity": 10}]},
    )
    order_id = created["salesOrder"]["id"]
    first = line((await mutate(gql, ALLOCATE, "allocateOrder", id=order_id))["salesOrder"], 1)
    [backorder] = first["backorders"]
    assert backorder["quantity"] == 6

    deleted = await mutate(gql, DELETE, "deleteBackorder", id=backorder["id"])
    assert deleted["backorder"] is None
    assert line(deleted["salesOrder"], 1)["backorders"] == []

    again = line((await mutate(gql, ALLOCATE, "allocateOrder", id=order_id))["salesOrder"], 1)
    [recreated] = again["backorders"]
    assert recreated["id"] != backorder["id"]
    assert (recreated["quantity"], recreated["status"]) == (6, "OPEN")


ADJUST_AND_FILL = (
    ORDER
    + """mutation($input: AdjustInventoryInput!) {
  adjustInventory(input: $input) {
    balance { onHand allocated available }
    filled { backorders { id quantity quantityAllocated status salesOrder { ...Order } }
             allocations { id quantity lot { lotNumber } location { code } }
             errors { code } }
    errors { code } } }"""
)


async def test_the_walkthrough_with_auto_fill_fills_the_backorder_on_the_receipt(
    app_client: AppClient, engine: AsyncEngine
) -> None:
    """AUTO_FILL_BACKORDERS=true (SPEC 9): step 6 happens on step 5's receipt itself, and
    allocating again (step 6) then finds nothing to do; steps 1 to 4 and 7 are as above."""
    async with app_client(auto_fill_backorders=True) as http:
        gql = GraphQLClient(http)
        order_id = await steps_1_to_4(gql)

        # 5. +100 self-tapping screws in lot S2 at A-03: the backorder for 3 is filled.
        received = await mutate(
            gql, ADJUST_AND_FILL, "adjustInventory",
            input={"sku": "SELF-TAP-SCREW", "lotNumber": "S2", "locationCode": "A-03",
                   "quantity": 100, "reason": "receipt"},
        )  # fmt: skip
        assert received["balance"] == {"onHand": 100, "allocated": 3, "available": 97}
        filled = received["filled"]
        assert filled["errors"] == []
        assert [(a["quantity"], a["lot"]["lotNumber"], a["location"]["code"])
                for a in filled["allocations"]] == [(3, "S2", "A-03")]  # fmt: skip
        [backorder] = filled["backorders"]
        assert (backorder["quantity"], backorder["quantityAllocated"], backorder["status"]) == (
            3, 3, "ALLOCATED",
        )  # fmt: skip
        order = backorder["salesOrder"]
        assert line(order, 2)["quantityBackordered"] == 0
        assert [a["quantity"] for a in line(order, 2)["allocations"]] == [22, 3]

        # 6. Allocating again has nothing left to do: no new line, the same version.
        again = await mutate(gql, ALLOCATE, "allocateOrder", id=order_id)
        assert again["allocations"] == []
        assert again["salesOrder"]["version"] == order["version"]

        # 7. Pack: the filled allocation line for 3 is packed.
        packed = await mutate(gql, PACK, "packAllocatedOrder", id=order_id)
        assert [p["quantity"] for p in packed["packedLines"]] == [3]
        assert packed["salesOrder"]["status"] == "PACKED"
        assert await unbalanced(engine) == []


async def steps_1_to_4(gql: GraphQLClient) -> str:
    """Steps 1 to 4 of the walk-through, checked where auto-fill could change them: the
    order is packed 25 and 22 and waits for 3 self-tapping screws. Its id."""
    for sku, name in (("BRASS-SCREW", "Brass Screw"), ("SELF-TAP-SCREW", "Self-Tapping Screw")):
        await mutate(gql, CREATE_ITEM, "createItem", input={"sku": sku, "name": name})
    for sequence, code in enumerate(("A-01", "A-02", "A-03"), start=1):
        await mutate(gql, CREATE_LOCATION, "createLocation",
                     input={"code": code, "name": code, "pickSequence": sequence})  # fmt: skip
    await adjust(gql, "BRASS-SCREW", "B1", "A-01", 15, receivedAt="2026-01-05T08:00:00Z")
    await adjust(gql, "BRASS-SCREW", "B2", "A-02", 20, receivedAt="2026-01-10T08:00:00Z")
    await adjust(gql, "SELF-TAP-SCREW", "S1", "A-03", 22, receivedAt="2026-01-05T08:00:00Z")
    created = await mutate(
        gql, CREATE_ORDER, "createSalesOrder",
        input={"customer": "Acme Fasteners",
               "lines": [{"sku": "BRASS-SCREW", "quantity": 25},
                         {"sku": "SELF-TAP-SCREW", "quantity": 25}]},
    )  # fmt: skip
    order_id: str = created["salesOrder"]["id"]
    allocated = await mutate(gql, ALLOCATE, "allocateOrder", id=order_id)
    assert [a["quantity"] for a in allocated["allocations"]] == [15, 10, 22]
    packed = await mutate(gql, PACK, "packAllocatedOrder", id=order_id)
    [backorder] = line(packed["salesOrder"], 2)["backorders"]
    assert (backorder["quantity"], backorder["status"]) == (3, "OPEN")
    return order_id
