"""previewAllocation (SPEC section 9): what allocateOrder would do now, writing nothing.

The property: for any stock and any order (also one allocated before, in part, packed
or not), a preview followed by allocateOrder at the preview's version, with nothing
changed in between, allocates exactly the previewed lots, locations and quantities and
leaves exactly the previewed shortfalls backordered, under every strategy.
"""

from __future__ import annotations

import contextlib
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.database import BEGIN_READ_ONLY, dsn
from db.tables import Base
from resolvers.ids import to_global_id
from services import orders
from services.domain.errors import DomainError
from services.domain.planner import AllocationStrategy
from services.ports import UnitOfWorkFactory
from tests.api.test_scopes import everything
from tests.conftest import GraphQLClient
from tests.service import helpers

PREVIEW = """query Preview($id: ID!, $strategy: AllocationStrategy) {
  previewAllocation(id: $id, strategy: $strategy) {
    version
    salesOrder { id version }
    lines {
      salesOrderLine { id lineNumber }
      shortfall skipped
      allocations { quantity balance { id } lot { lotNumber } location { code } }
    }
  }
}"""
ALLOCATE = """mutation Allocate($id: ID!, $expectedVersion: Int, $strategy: AllocationStrategy) {
  allocateOrder(id: $id, expectedVersion: $expectedVersion, strategy: $strategy) {
    salesOrder { version lines { id lineNumber quantityBackordered } }
    allocations {
      quantity balance { id } lot { lotNumber } location { code } salesOrderLine { id }
    }
    errors { code field }
  }
}"""


def order_gid(order_id: int) -> str:
    return to_global_id("SalesOrder", order_id)


async def preview(
    gql: GraphQLClient, order_id: int, strategy: AllocationStrategy | None = None
) -> dict[str, Any]:
    variables = {"id": order_gid(order_id), "strategy": strategy.value if strategy else None}
    found: dict[str, Any] = (await gql.data(PREVIEW, **variables))["previewAllocation"]
    return found


def pick_of(allocation: dict[str, Any]) -> tuple[str, str, str, int]:
    return (
        allocation["balance"]["id"],
        allocation["lot"]["lotNumber"],
        allocation["location"]["code"],
        allocation["quantity"],
    )


# -- the walk-through's order ------------------------------------------------------------


async def test_the_preview_of_the_walkthrough_order_is_step_3(
    gql: GraphQLClient, uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.warehouse(uow)
    order_id = await helpers.order(uow, ("BRASS-SCREW", 25), ("SELF-TAP-SCREW", 25))

    found = await preview(gql, order_id)

    assert (found["version"], found["salesOrder"]["version"]) == (1, 1)
    assert [
        (ln["salesOrderLine"]["lineNumber"], [pick_of(a)[1:] for a in ln["allocations"]],
         ln["shortfall"], ln["skipped"])
        for ln in found["lines"]
    ] == [
        (1, [("B1", "A-01", 15), ("B2", "A-02", 10)], 0, None),
        (2, [("S1", "A-03", 22)], 3, None),
    ]  # fmt: skip


async def test_a_strategy_changes_the_preview_as_it_changes_the_allocation(
    gql: GraphQLClient, uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    """B2 sits at a location walked before B1's: LOCATION takes it first, FIFO does not."""
    await helpers.item(uow, "BRASS-SCREW")
    await helpers.location(uow, "A-01", 2)
    await helpers.location(uow, "A-02", 1)
    await helpers.stock(uow, "BRASS-SCREW", "B1", "A-01", 15, received_day=5)
    await helpers.stock(uow, "BRASS-SCREW", "B2", "A-02", 20, received_day=10)
    order_id = await helpers.order(uow, ("BRASS-SCREW", 25))

    fifo = await preview(gql, order_id, AllocationStrategy.FIFO)
    by_location = await preview(gql, order_id, AllocationStrategy.LOCATION)

    assert [pick_of(a)[1:] for a in fifo["lines"][0]["allocations"]] == [
        ("B1", "A-01", 15), ("B2", "A-02", 10)
    ]  # fmt: skip
    assert [pick_of(a)[1:] for a in by_location["lines"][0]["allocations"]] == [
        ("B2", "A-02", 20), ("B1", "A-01", 5)
    ]  # fmt: skip


async def test_every_line_is_shown_a_serialized_one_skipped_a_full_one_with_nothing_to_do(
    gql: GraphQLClient, uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.warehouse(uow)
    await helpers.item(uow, "PHONE", serialized=True)
    order_id = await helpers.order(uow, ("SELF-TAP-SCREW", 5), ("PHONE", 2))
    await orders.allocate_order(uow, order_id)  # line 1 now has no open demand
    await orders.add_sales_order_line(uow, order_id, "BRASS-SCREW", 40)

    found = await preview(gql, order_id)

    assert found["version"] == 3
    assert [
        (ln["salesOrderLine"]["lineNumber"], ln["allocations"] != [], ln["shortfall"],
         ln["skipped"])
        for ln in found["lines"]
    ] == [(1, False, 0, None), (2, False, 0, "SERIALIZED_ITEM"), (3, True, 5, None)]  # fmt: skip


@pytest.mark.parametrize(
    "order_id", [to_global_id("SalesOrder", 999), to_global_id("Item", 1), "bm90LWFuLWlk"]
)
async def test_an_unknown_or_garbled_order_id_is_not_found(
    gql: GraphQLClient, engine: AsyncEngine, order_id: str
) -> None:
    body = await gql.post(PREVIEW, id=order_id)

    assert body["data"] is None  # the field is non-null
    [error] = body["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"], error["path"]) == (
        "NOT_FOUND", ["id"], ["previewAllocation"]
    )  # fmt: skip


# -- writes nothing, locks nothing ---------------------------------------------------------


async def test_a_preview_writes_nothing_and_holds_no_lock(
    counted: tuple[GraphQLClient, list[str]],
    uow: UnitOfWorkFactory,
    engine: AsyncEngine,
    database_url: str,
) -> None:
    gql, sent = counted
    await helpers.warehouse(uow)
    order_id = await helpers.order(uow, ("BRASS-SCREW", 25), ("SELF-TAP-SCREW", 25))
    await orders.allocate_order(uow, order_id)
    await helpers.stock(uow, "SELF-TAP-SCREW", "S2", "A-03", 100)
    before = await everything(engine)

    found = await preview(gql, order_id)

    assert [ln["shortfall"] for ln in found["lines"]] == [0, 0]
    assert found["lines"][1]["allocations"] != []
    assert await everything(engine) == before  # no row, no version, no movement
    # One read-only snapshot, rolled back; no statement that writes or locks rows.
    assert sent[0] == BEGIN_READ_ONLY
    assert "ROLLBACK" in sent
    for statement in sent:
        words = statement.upper().split()
        assert not {"INSERT", "UPDATE", "DELETE", "COMMIT"} & set(words), statement
        assert "FOR UPDATE" not in statement.upper(), statement
    # Right after, another transaction locks and changes the order and its stock at once.
    connection = await asyncpg.connect(dsn(database_url))
    try:
        async with connection.transaction():
            await connection.execute(
                "SELECT 1 FROM sales_orders WHERE id = $1 FOR UPDATE NOWAIT", order_id
            )
            await connection.execute("SELECT 1 FROM inventory_balances FOR UPDATE NOWAIT")
    finally:
        await connection.close()
    allocated = (
        await gql.data(ALLOCATE, id=order_gid(order_id), expectedVersion=found["version"])
    )["allocateOrder"]
    assert allocated["errors"] == []


# -- the property -----------------------------------------------------------------------

SKUS = {"BOLT": False, "NUT": False, "PHONE": True}
LOTS = ["L1", "L2", "L3"]
LOCATIONS = ["A-01", "A-02", "A-03"]
# Few values, so that balances often tie on every key of a strategy but the id.
LOT_DATES = st.tuples(st.sampled_from([1, 2]), st.sampled_from([None, 10, 10, 20]))
RECEIPTS = st.lists(
    st.tuples(
        st.sampled_from(["BOLT", "NUT"]), st.sampled_from(LOTS), st.sampled_from(LOCATIONS),
        st.integers(1, 12),
    ),
    max_size=6,
)  # fmt: skip
LINES = st.lists(st.tuples(st.sampled_from(list(SKUS)), st.integers(1, 25)), min_size=1, max_size=4)


@st.composite
def histories(draw: st.DrawFn) -> dict[str, Any]:
    """Stock, an order, and what happened to it before the preview."""
    return {
        "lots": {lot: draw(LOT_DATES) for lot in LOTS},
        "picks": {code: draw(st.sampled_from([1, 2])) for code in LOCATIONS},
        "stock": draw(RECEIPTS),
        "lines": draw(LINES),
        # Allocated before (in part, most likely), then packed or not, then more stock.
        "before": draw(st.none() | st.sampled_from(list(AllocationStrategy))),
        "packed": draw(st.booleans()),
        "more_stock": draw(RECEIPTS),
        "added_line": draw(st.none() | st.tuples(st.sampled_from(["BOLT", "NUT"]),
                                                 st.integers(1, 25))),
    }  # fmt: skip


async def empty(engine: AsyncEngine) -> None:
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await conn.execute(text("ALTER SEQUENCE sales_order_number_seq RESTART"))


async def receive(
    uow: UnitOfWorkFactory, history: dict[str, Any], receipts: list[tuple[str, str, str, int]]
) -> None:
    for sku, lot, code, quantity in receipts:
        received, expires = history["lots"][lot]
        await helpers.stock(
            uow, sku, lot, code, quantity, received_day=received, expires_day=expires
        )


async def set_up(uow: UnitOfWorkFactory, engine: AsyncEngine, history: dict[str, Any]) -> int:
    await empty(engine)
    for sku, serialized in SKUS.items():
        await helpers.item(uow, sku, serialized)
    for code, sequence in history["picks"].items():
        await helpers.location(uow, code, sequence)
    await receive(uow, history, history["stock"])
    order_id = await helpers.order(uow, *history["lines"])
    if history["before"] is not None:
        await orders.allocate_order(uow, order_id, None, history["before"])
        if history["packed"]:
            with contextlib.suppress(DomainError):  # NOTHING_TO_PACK: nothing was allocated
                await orders.pack_allocated_order(uow, order_id)
    await receive(uow, history, history["more_stock"])
    if history["added_line"] is not None:
        await orders.add_sales_order_line(uow, order_id, *history["added_line"])
    return order_id


@pytest.mark.parametrize("strategy", list(AllocationStrategy))
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples every run: CI fails on code, never on luck
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories())
async def test_allocating_at_the_previewed_version_does_what_the_preview_said(
    gql: GraphQLClient,
    uow: UnitOfWorkFactory,
    engine: AsyncEngine,
    strategy: AllocationStrategy,
    history: dict[str, Any],
) -> None:
    order_id = await set_up(uow, engine, history)

    found = await preview(gql, order_id, strategy)
    allocated = (
        await gql.data(
            ALLOCATE, id=order_gid(order_id), expectedVersion=found["version"],
            strategy=strategy.value,
        )
    )["allocateOrder"]  # fmt: skip

    lines = found["lines"]
    # What the examples covered (pytest --hypothesis-show-statistics).
    event("allocated before" if history["before"] else "never allocated before")
    event("some shortfall" if any(ln["shortfall"] for ln in lines) else "no shortfall")
    event(
        "a line from two balances or more"
        if any(len(ln["allocations"]) > 1 for ln in lines)
        else "no line from two balances"
    )
    skipped = [str(i) for i, ln in enumerate(lines) if ln["skipped"] == "SERIALIZED_ITEM"]
    assert allocated["errors"] == [
        {"code": "SERIALIZED_ITEM", "field": ["lines", index]} for index in skipped
    ]
    for ln in lines:
        if ln["skipped"] is not None:
            assert (ln["allocations"], ln["shortfall"]) == ([], 0)
    made = [
        (a["salesOrderLine"]["id"], pick_of(a)) for a in allocated["allocations"]
    ]  # in the order allocateOrder made them: line by line, pick by pick
    assert made == [
        (ln["salesOrderLine"]["id"], pick_of(a)) for ln in lines for a in ln["allocations"]
    ]
    after = allocated["salesOrder"]["lines"]
    assert [ln["id"] for ln in after] == [ln["salesOrderLine"]["id"] for ln in lines]
    assert [ln["quantityBackordered"] for ln in after] == [ln["shortfall"] for ln in lines]


# -- cost and company ----------------------------------------------------------------------

EVERYTHING = """query Preview($id: ID!) {
  previewAllocation(id: $id) {
    version
    salesOrder { id status lines { id quantityAllocated quantityBackordered } }
    lines {
      shortfall skipped
      salesOrderLine { id quantity quantityAllocated item { sku available } }
      allocations {
        quantity balance { id onHand } lot { lotNumber item { sku } } location { code }
      }
    }
  }
}"""


async def test_a_preview_costs_the_same_statements_for_2_lines_as_for_20(
    counted: tuple[GraphQLClient, list[str]], uow: UnitOfWorkFactory
) -> None:
    gql, sent = counted
    await helpers.warehouse(uow)

    async def count(*lines: tuple[str, int]) -> tuple[int, dict[str, Any]]:
        order_id = await helpers.order(uow, *lines)
        sent.clear()
        found: dict[str, Any] = (await gql.data(EVERYTHING, id=order_gid(order_id)))[
            "previewAllocation"
        ]
        return len(sent), found

    few, small = await count(("BRASS-SCREW", 25), ("SELF-TAP-SCREW", 25))
    many, large = await count(*[("BRASS-SCREW", 1), ("SELF-TAP-SCREW", 2)] * 10)

    assert [len(ln["allocations"]) for ln in small["lines"]] == [2, 1]
    assert len(large["lines"]) == 20
    assert few == many, sent
    # The snapshot's BEGIN, the order with its lines, allocation lines and backorders, the
    # stock, the ROLLBACK; then the balances and the items, which it did not read.
    assert few == 6, sent


async def test_previews_in_one_query_take_turns_on_its_connection(
    gql: GraphQLClient, uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.warehouse(uow)
    first = await helpers.order(uow, ("BRASS-SCREW", 25))
    second = await helpers.order(uow, ("SELF-TAP-SCREW", 30))
    both = """query Both($a: ID!, $b: ID!) {
      a: previewAllocation(id: $a, strategy: LOCATION) { version lines { shortfall } }
      b: previewAllocation(id: $b) { version lines { shortfall } }
      stock: availableToPromise(sku: "SELF-TAP-SCREW") { promisable }
    }"""

    found = await gql.data(both, a=order_gid(first), b=order_gid(second))

    assert found == {
        "a": {"version": 1, "lines": [{"shortfall": 0}]},
        "b": {"version": 1, "lines": [{"shortfall": 8}]},
        "stock": {"promisable": 22},
    }
