"""SPEC sections 4 and 5, one rule or error code at a time, through the use cases.

Every test reads the database back afterwards: a rule that says no must also
leave nothing written, and one that says yes must leave exactly its change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services import catalog, orders
from services.domain.errors import DomainError, ErrorCode, Subject
from services.domain.order import BackorderStatus, SalesOrder
from services.domain.planner import AllocationStrategy
from services.ports import UnitOfWorkFactory
from tests.service import helpers

UNKNOWN_ID = 987_654

# -- reading the database back ---------------------------------------------------------


async def reload(uow: UnitOfWorkFactory, order_id: int) -> SalesOrder:
    async with uow() as u:
        order = await u.orders.get(order_id)
    assert order is not None
    return order


def ids(objects: list[Any]) -> list[int]:
    found = [obj.id for obj in objects]
    assert all(isinstance(i, int) for i in found)
    return [int(i) for i in found]


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        result = await conn.execute(text(sql), params)
        return [tuple(row) for row in result]


async def count(engine: AsyncEngine, table: str) -> int:
    ((found,),) = await rows(engine, f"SELECT count(*) FROM {table}")
    return int(found)


@dataclass(frozen=True)
class Balance:
    on_hand: int
    allocated: int
    version: int

    @property
    def available(self) -> int:
        return self.on_hand - self.allocated


async def balance(engine: AsyncEngine, lot_number: str) -> Balance:
    ((on_hand, allocated, version),) = await rows(
        engine,
        "SELECT b.on_hand, b.allocated, b.version FROM inventory_balances b"
        " JOIN lots l ON l.id = b.lot_id WHERE l.lot_number = :lot",
        lot=lot_number,
    )
    return Balance(on_hand, allocated, version)


@dataclass(frozen=True)
class Snapshot:
    """Everything an order operation could write."""

    version: int
    lines: list[tuple[Any, ...]]
    allocations: list[tuple[Any, ...]]
    backorders: list[tuple[Any, ...]]
    packed_lines: list[tuple[Any, ...]]
    balances: list[tuple[Any, ...]]


async def snapshot(engine: AsyncEngine, order_id: int) -> Snapshot:
    ((version,),) = await rows(
        engine, "SELECT version FROM sales_orders WHERE id = :id", id=order_id
    )
    return Snapshot(
        version,
        await rows(
            engine,
            "SELECT id, quantity, quantity_cancelled FROM sales_order_lines"
            " WHERE order_id = :id ORDER BY id",
            id=order_id,
        ),
        await rows(
            engine,
            "SELECT id, line_id, balance_id, quantity, quantity_packed FROM allocations"
            " WHERE order_id = :id ORDER BY id",
            id=order_id,
        ),
        await rows(
            engine,
            "SELECT id, line_id, quantity, quantity_allocated, status, updated_at FROM backorders"
            " WHERE order_id = :id ORDER BY id",
            id=order_id,
        ),
        await rows(
            engine,
            "SELECT id, line_id, quantity FROM packed_lines WHERE order_id = :id ORDER BY id",
            id=order_id,
        ),
        await rows(
            engine, "SELECT id, on_hand, allocated, version FROM inventory_balances ORDER BY id"
        ),
    )


async def fails(code: ErrorCode, call: Awaitable[object]) -> DomainError:
    with pytest.raises(DomainError) as caught:
        await call
    assert caught.value.code is code, caught.value.message
    return caught.value


# -- set-ups ---------------------------------------------------------------------------


async def walkthrough_allocated(uow: UnitOfWorkFactory) -> int:
    """Steps 1-3: Brass 15 (B1) + 10 (B2), Self-Tapping 22 (S1) and a backorder for 3."""
    await helpers.warehouse(uow)
    order_id = await helpers.order(uow, ("BRASS-SCREW", 25), ("SELF-TAP-SCREW", 25))
    await orders.allocate_order(uow, order_id)
    return order_id


async def walkthrough_packed_then_refilled(uow: UnitOfWorkFactory) -> tuple[int, int]:
    """Steps 1-6; returns the order and the new, unpacked allocation line for 3."""
    order_id = await walkthrough_allocated(uow)
    await orders.pack_allocated_order(uow, order_id, None)
    await helpers.stock(uow, "SELF-TAP-SCREW", "S2", "A-03", 100, received_day=20)
    result = await orders.allocate_order(uow, order_id)
    (new_id,) = result.allocation_ids
    return order_id, new_id


# -- serialized items ------------------------------------------------------------------


async def test_allocating_skips_a_serialized_line_and_allocates_the_others(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 10)
    await helpers.item(uow, "LAPTOP", serialized=True)
    await helpers.stock(uow, "LAPTOP", "SN-LOT", "BIN-1", 5)  # stock there, still not allocated
    order_id = await helpers.order(uow, ("LAPTOP", 2), ("WIDGET", 4))
    laptop_line, widget_line = ids((await reload(uow, order_id)).lines)

    result = await orders.allocate_order(uow, order_id)

    assert result.serialized_line_ids == [laptop_line]
    assert [(a.line_id, a.quantity) for a in result.allocations] == [(widget_line, 4)]
    order = await reload(uow, order_id)
    assert [(a.line_id, a.quantity) for a in order.allocations] == [(widget_line, 4)]
    assert order.backorders == []
    assert await balance(engine, "SN-LOT") == Balance(5, 0, 2)
    assert (await balance(engine, "L1")).allocated == 4


async def test_allocating_again_never_backorders_a_serialized_line(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 0)
    await helpers.item(uow, "LAPTOP", serialized=True)
    order_id = await helpers.order(uow, ("LAPTOP", 2))

    for _ in range(2):
        result = await orders.allocate_order(uow, order_id)
        assert result.allocations == []
        assert len(result.serialized_line_ids) == 1

    assert await count(engine, "backorders") == 0
    assert await count(engine, "allocations") == 0


# -- packing ---------------------------------------------------------------------------


async def test_packing_an_order_with_nothing_allocated_is_nothing_to_pack(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 0)
    order_id = await helpers.order(uow, ("WIDGET", 3))
    before = await snapshot(engine, order_id)

    await fails(ErrorCode.NOTHING_TO_PACK, orders.pack_allocated_order(uow, order_id, None))

    assert await snapshot(engine, order_id) == before
    assert await count(engine, "packed_lines") == 0


async def test_packing_a_fully_packed_order_again_is_nothing_to_pack(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    order_id = await walkthrough_allocated(uow)
    await orders.pack_allocated_order(uow, order_id, None)
    before = await snapshot(engine, order_id)

    await fails(ErrorCode.NOTHING_TO_PACK, orders.pack_allocated_order(uow, order_id, None))

    assert await snapshot(engine, order_id) == before
    assert await count(engine, "packed_lines") == 2


async def test_packing_lowers_on_hand_and_allocated_and_sets_quantity_packed(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    order_id = await walkthrough_allocated(uow)
    before = {lot: await balance(engine, lot) for lot in ("B1", "B2", "S1")}
    assert {lot: (b.on_hand, b.allocated) for lot, b in before.items()} == {
        "B1": (15, 15),
        "B2": (20, 10),
        "S1": (22, 22),
    }

    packed_ids = await orders.pack_allocated_order(uow, order_id, None)

    assert len(packed_ids) == 2
    after = {lot: await balance(engine, lot) for lot in ("B1", "B2", "S1")}
    assert {lot: (b.on_hand, b.allocated) for lot, b in after.items()} == {
        "B1": (0, 0),
        "B2": (10, 0),
        "S1": (0, 0),
    }
    assert all(after[lot].version == before[lot].version + 1 for lot in after)
    order = await reload(uow, order_id)
    assert [(a.quantity, a.quantity_packed) for a in order.allocations] == [
        (15, 15),
        (10, 10),
        (22, 22),
    ]
    brass, tap = ids(order.lines)
    assert sorted(await rows(engine, "SELECT line_id, quantity FROM packed_lines")) == [
        (brass, 25),
        (tap, 22),
    ]
    assert await count(engine, "packed_line_allocations") == 3
    # The backorder for 3 stays open (step 4).
    assert [(b.remaining, b.status) for b in order.backorders] == [(3, BackorderStatus.OPEN)]


# -- removing allocation lines ---------------------------------------------------------


async def test_removing_a_packed_allocation_among_others_is_allocation_packed_and_removes_nothing(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    order_id, unpacked_id = await walkthrough_packed_then_refilled(uow)
    packed_id = ids((await reload(uow, order_id)).allocations)[0]
    before = await snapshot(engine, order_id)
    assert (await balance(engine, "S2")).allocated == 3

    error = await fails(
        ErrorCode.ALLOCATION_PACKED,
        orders.remove_allocation_lines(uow, [unpacked_id, packed_id], None),
    )

    assert (error.subject, error.index) == (Subject.ALLOCATION, 1)
    assert await snapshot(engine, order_id) == before
    assert unpacked_id in ids((await reload(uow, order_id)).allocations)
    assert (await balance(engine, "S2")).allocated == 3


async def test_removing_with_an_unknown_allocation_id_is_not_found_and_removes_nothing(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    order_id = await walkthrough_allocated(uow)
    first, second, third = ids((await reload(uow, order_id)).allocations)
    before = await snapshot(engine, order_id)

    error = await fails(
        ErrorCode.NOT_FOUND,
        orders.remove_allocation_lines(uow, [first, UNKNOWN_ID, second, third], None),
    )

    assert (error.subject, error.index) == (Subject.ALLOCATION, 1)
    assert await snapshot(engine, order_id) == before
    assert await count(engine, "allocations") == 3


async def test_removing_allocation_lines_returns_stock_to_available_and_keeps_backorders(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.warehouse(uow)
    order_id = await helpers.order(uow, ("BRASS-SCREW", 40))
    await orders.allocate_order(uow, order_id)
    order = await reload(uow, order_id)
    assert [a.quantity for a in order.allocations] == [15, 20]
    backorders_before = await rows(
        engine, "SELECT id, quantity, quantity_allocated, status FROM backorders"
    )
    assert [b[1:] for b in backorders_before] == [(5, 0, "OPEN")]

    await orders.remove_allocation_lines(uow, ids(order.allocations), None)

    assert await count(engine, "allocations") == 0
    assert await balance(engine, "B1") == Balance(15, 0, 4)
    assert await balance(engine, "B2") == Balance(20, 0, 4)
    assert (
        await rows(engine, "SELECT id, quantity, quantity_allocated, status FROM backorders")
        == backorders_before
    )


# -- changing lines --------------------------------------------------------------------


async def test_a_line_cannot_be_lowered_below_its_allocated_quantity(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    order_id = await walkthrough_allocated(uow)
    brass, _ = ids((await reload(uow, order_id)).lines)
    before = await snapshot(engine, order_id)

    error = await fails(
        ErrorCode.QUANTITY_BELOW_ALLOCATED,
        orders.update_sales_order_line(uow, brass, 24, None),
    )

    assert (error.subject, error.index) == (Subject.QUANTITY, None)
    assert await snapshot(engine, order_id) == before


async def test_lowering_a_line_shrinks_its_open_backorder(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 4)
    order_id = await helpers.order(uow, ("WIDGET", 10))
    await orders.allocate_order(uow, order_id)
    (line_id,) = ids((await reload(uow, order_id)).lines)
    ((backorder_id, quantity),) = await rows(engine, "SELECT id, quantity FROM backorders")
    assert quantity == 6

    await orders.update_sales_order_line(uow, line_id, 7, None)

    assert await rows(
        engine, "SELECT id, quantity, quantity_allocated, status FROM backorders"
    ) == [(backorder_id, 3, 0, "OPEN")]
    assert await rows(engine, "SELECT quantity FROM sales_order_lines") == [(7,)]
    assert (await balance(engine, "L1")).allocated == 4


async def test_lowering_a_line_to_its_allocated_quantity_leaves_no_open_backorder(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 4)
    order_id = await helpers.order(uow, ("WIDGET", 10))
    await orders.allocate_order(uow, order_id)
    (line_id,) = ids((await reload(uow, order_id)).lines)
    assert await rows(engine, "SELECT quantity, status FROM backorders") == [(6, "OPEN")]

    await orders.update_sales_order_line(uow, line_id, 4, None)

    # It never received stock and is no longer needed: gone (README, lowering a line).
    assert await rows(engine, "SELECT id FROM backorders") == []
    order = await reload(uow, order_id)
    assert order.open_demand(order.lines[0]) == 0


# -- inventory adjustments -------------------------------------------------------------


async def test_a_negative_adjustment_below_allocated_is_insufficient_stock(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 10)
    order_id = await helpers.order(uow, ("WIDGET", 8))
    await orders.allocate_order(uow, order_id)
    before = await balance(engine, "L1")
    assert (before.on_hand, before.allocated) == (10, 8)

    error = await fails(
        ErrorCode.INSUFFICIENT_STOCK,
        catalog.adjust_inventory(uow, catalog.Adjustment("WIDGET", "L1", "BIN-1", -3, "damaged")),
    )

    assert (error.subject, error.index) == (Subject.QUANTITY, None)
    assert await balance(engine, "L1") == before
    assert await count(engine, "inventory_adjustments") == 1  # the receipt only
    # Down to exactly the allocated quantity is still allowed.
    await catalog.adjust_inventory(uow, catalog.Adjustment("WIDGET", "L1", "BIN-1", -2, "damaged"))
    assert (await balance(engine, "L1")).on_hand == 8


async def test_a_negative_first_adjustment_creates_no_lot_or_balance(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 0)

    await fails(
        ErrorCode.INSUFFICIENT_STOCK,
        catalog.adjust_inventory(uow, catalog.Adjustment("WIDGET", "NEW", "BIN-1", -1, "count")),
    )

    assert await count(engine, "lots") == 0
    assert await count(engine, "inventory_balances") == 0
    assert await count(engine, "inventory_adjustments") == 0


async def test_the_first_receipt_creates_the_lot_and_the_balance(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 0)
    received = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    expires = datetime(2027, 3, 1, tzinfo=UTC)
    assert await count(engine, "lots") == 0

    first = await catalog.adjust_inventory(
        uow, catalog.Adjustment("WIDGET", "NEW-LOT", "BIN-1", 7, "receipt", received, expires)
    )

    assert await rows(engine, "SELECT lot_number, received_at, expires_at FROM lots") == [
        ("NEW-LOT", received, expires)
    ]
    assert await rows(engine, "SELECT id, on_hand, allocated FROM inventory_balances") == [
        (first.balance_id, 7, 0)
    ]
    assert await rows(
        engine, "SELECT id, balance_id, quantity, reason FROM inventory_adjustments"
    ) == [(first.adjustment_id, first.balance_id, 7, "receipt")]

    second = await catalog.adjust_inventory(
        uow, catalog.Adjustment("WIDGET", "NEW-LOT", "BIN-1", 3, "receipt")
    )

    assert second.balance_id == first.balance_id
    assert await count(engine, "lots") == 1
    assert await balance(engine, "NEW-LOT") == Balance(10, 0, 3)
    assert await count(engine, "inventory_adjustments") == 2


# -- optimistic locking ----------------------------------------------------------------


OrderOperation = Callable[[UnitOfWorkFactory, SalesOrder, int], Awaitable[object]]


async def allocate_stale(uow: UnitOfWorkFactory, order: SalesOrder, stale: int) -> object:
    return await orders.allocate_order(uow, order.id, stale)


async def pack_stale(uow: UnitOfWorkFactory, order: SalesOrder, stale: int) -> object:
    return await orders.pack_allocated_order(uow, order.id, stale)


async def remove_stale(uow: UnitOfWorkFactory, order: SalesOrder, stale: int) -> object:
    return await orders.remove_allocation_lines(uow, ids(order.allocations), stale)


async def update_line_stale(uow: UnitOfWorkFactory, order: SalesOrder, stale: int) -> object:
    return await orders.update_sales_order_line(uow, ids(order.lines)[0], 30, stale)


@pytest.mark.parametrize(
    "operation",
    [allocate_stale, pack_stale, remove_stale, update_line_stale],
    ids=["allocate", "pack", "remove", "update-line"],
)
async def test_a_stale_expected_version_is_a_version_conflict_and_changes_nothing(
    uow: UnitOfWorkFactory, engine: AsyncEngine, operation: OrderOperation
) -> None:
    order_id = await walkthrough_allocated(uow)
    # New stock, so that an allocate would have work to do if it were let through.
    await helpers.stock(uow, "SELF-TAP-SCREW", "S2", "A-03", 100, received_day=20)
    order = await reload(uow, order_id)
    assert order.version == 2
    before = await snapshot(engine, order_id)

    error = await fails(ErrorCode.VERSION_CONFLICT, operation(uow, order, 1))

    assert error.current_version == 2
    assert error.subject is Subject.EXPECTED_VERSION
    assert await snapshot(engine, order_id) == before


async def test_the_current_expected_version_is_accepted(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    order_id = await walkthrough_allocated(uow)

    await orders.pack_allocated_order(uow, order_id, 2)

    assert (await snapshot(engine, order_id)).version == 3


async def test_every_change_to_an_order_increments_its_version(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 5)
    order_id = await helpers.order(uow, ("WIDGET", 3))
    versions = [(await snapshot(engine, order_id)).version]

    async def changed() -> None:
        versions.append((await snapshot(engine, order_id)).version)

    await orders.add_sales_order_line(uow, order_id, "WIDGET", 4, None)
    await changed()
    await orders.allocate_order(uow, order_id)  # 3 + 2, a backorder for 2
    await changed()
    first, second = ids((await reload(uow, order_id)).lines)
    await orders.update_sales_order_line(uow, second, 3, None)  # the backorder shrinks to 1
    await changed()
    await orders.pack_allocated_order(uow, order_id, None)
    await changed()
    (backorder_id,) = ids((await reload(uow, order_id)).backorders)
    await orders.cancel_backorder(uow, backorder_id, "not waiting")
    await changed()
    await orders.add_sales_order_line(uow, order_id, "WIDGET", 1, None)
    await changed()
    third = ids((await reload(uow, order_id)).lines)[2]
    await orders.delete_sales_order_line(uow, third, None)
    await changed()

    assert first != second
    assert versions == list(range(1, 9))
    assert (await reload(uow, order_id)).version == 8


async def test_an_allocate_with_nothing_to_do_leaves_the_version_unchanged(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 10)
    order_id = await helpers.order(uow, ("WIDGET", 4))
    await orders.allocate_order(uow, order_id)
    before = await snapshot(engine, order_id)
    assert before.version == 2

    result = await orders.allocate_order(uow, order_id)

    assert result.allocations == []
    assert await snapshot(engine, order_id) == before


async def test_reallocating_a_short_order_without_new_stock_leaves_the_version_unchanged(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    """Nothing arrived, so nothing changes: the same backorder, the same version."""
    await helpers.one_balance(uow, 4)
    order_id = await helpers.order(uow, ("WIDGET", 10))
    await orders.allocate_order(uow, order_id)
    before = await snapshot(engine, order_id)
    assert [b[2:5] for b in before.backorders] == [(6, 0, "OPEN")]

    result = await orders.allocate_order(uow, order_id)

    assert result.allocations == []
    assert await snapshot(engine, order_id) == before


# -- not found -------------------------------------------------------------------------


async def test_allocating_packing_or_adding_to_an_unknown_order_is_not_found(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 5)

    await fails(ErrorCode.NOT_FOUND, orders.allocate_order(uow, UNKNOWN_ID))
    await fails(ErrorCode.NOT_FOUND, orders.pack_allocated_order(uow, UNKNOWN_ID, None))
    error = await fails(
        ErrorCode.NOT_FOUND, orders.add_sales_order_line(uow, UNKNOWN_ID, "WIDGET", 1, None)
    )

    assert error.subject is Subject.ORDER  # the argument that named the order
    assert await count(engine, "sales_order_lines") == 0
    assert await balance(engine, "L1") == Balance(5, 0, 2)


async def test_updating_or_deleting_an_unknown_line_is_not_found(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 5)
    order_id = await helpers.order(uow, ("WIDGET", 2))
    before = await snapshot(engine, order_id)

    await fails(ErrorCode.NOT_FOUND, orders.update_sales_order_line(uow, UNKNOWN_ID, 3, None))
    await fails(ErrorCode.NOT_FOUND, orders.delete_sales_order_line(uow, UNKNOWN_ID, None))

    assert await snapshot(engine, order_id) == before


async def test_cancelling_or_deleting_an_unknown_backorder_is_not_found(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 0)
    order_id = await helpers.order(uow, ("WIDGET", 2))
    await orders.allocate_order(uow, order_id)
    before = await snapshot(engine, order_id)

    await fails(ErrorCode.NOT_FOUND, orders.cancel_backorder(uow, UNKNOWN_ID))
    await fails(ErrorCode.NOT_FOUND, orders.delete_backorder(uow, UNKNOWN_ID))

    assert await snapshot(engine, order_id) == before
    assert [b[4] for b in before.backorders] == ["OPEN"]


async def test_an_order_with_an_unknown_sku_is_not_found_and_not_created(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 5)

    error = await fails(ErrorCode.NOT_FOUND, helpers.order(uow, ("WIDGET", 1), ("NO-SUCH-SKU", 1)))

    assert (error.subject, error.index) == (Subject.ITEM, 1)
    assert await count(engine, "sales_orders") == 0
    assert await count(engine, "sales_order_lines") == 0


async def test_adding_a_line_with_an_unknown_sku_is_not_found(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 5)
    order_id = await helpers.order(uow, ("WIDGET", 1))
    before = await snapshot(engine, order_id)

    error = await fails(
        ErrorCode.NOT_FOUND, orders.add_sales_order_line(uow, order_id, "NO-SUCH-SKU", 1, None)
    )

    assert (error.subject, error.index) == (Subject.ITEM, None)
    assert await snapshot(engine, order_id) == before


@pytest.mark.parametrize(
    ("sku", "location_code", "subject"),
    [
        ("NO-SUCH-SKU", "BIN-1", Subject.ITEM),
        ("WIDGET", "NO-SUCH-BIN", Subject.LOCATION),
    ],
)
async def test_adjusting_an_unknown_sku_or_location_code_is_not_found(
    uow: UnitOfWorkFactory,
    engine: AsyncEngine,
    sku: str,
    location_code: str,
    subject: Subject,
) -> None:
    await helpers.one_balance(uow, 0)

    error = await fails(
        ErrorCode.NOT_FOUND,
        catalog.adjust_inventory(uow, catalog.Adjustment(sku, "L9", location_code, 5, "receipt")),
    )

    assert error.subject is subject
    assert await count(engine, "lots") == 0
    assert await count(engine, "inventory_balances") == 0
    assert await count(engine, "inventory_adjustments") == 0


# -- invalid quantities ----------------------------------------------------------------


@pytest.mark.parametrize("quantity", [0, -1])
async def test_an_order_line_of_zero_or_negative_quantity_is_invalid(
    uow: UnitOfWorkFactory, engine: AsyncEngine, quantity: int
) -> None:
    await helpers.one_balance(uow, 5)

    error = await fails(
        ErrorCode.INVALID_QUANTITY, helpers.order(uow, ("WIDGET", 2), ("WIDGET", quantity))
    )

    assert (error.subject, error.index) == (Subject.QUANTITY, 1)
    assert await count(engine, "sales_orders") == 0
    assert await count(engine, "sales_order_lines") == 0


@pytest.mark.parametrize("quantity", [0, -4])
async def test_adding_or_updating_a_line_to_zero_or_negative_quantity_is_invalid(
    uow: UnitOfWorkFactory, engine: AsyncEngine, quantity: int
) -> None:
    await helpers.one_balance(uow, 5)
    order_id = await helpers.order(uow, ("WIDGET", 2))
    (line_id,) = ids((await reload(uow, order_id)).lines)
    before = await snapshot(engine, order_id)

    added = await fails(
        ErrorCode.INVALID_QUANTITY,
        orders.add_sales_order_line(uow, order_id, "WIDGET", quantity, None),
    )
    updated = await fails(
        ErrorCode.INVALID_QUANTITY, orders.update_sales_order_line(uow, line_id, quantity, None)
    )

    assert added.subject is updated.subject is Subject.QUANTITY
    assert await snapshot(engine, order_id) == before


async def test_a_zero_adjustment_is_invalid(uow: UnitOfWorkFactory, engine: AsyncEngine) -> None:
    await helpers.one_balance(uow, 5)

    await fails(
        ErrorCode.INVALID_QUANTITY,
        catalog.adjust_inventory(uow, catalog.Adjustment("WIDGET", "L1", "BIN-1", 0, "count")),
    )
    await fails(
        ErrorCode.INVALID_QUANTITY,
        catalog.adjust_inventory(uow, catalog.Adjustment("WIDGET", "L2", "BIN-1", 0, "count")),
    )

    assert await balance(engine, "L1") == Balance(5, 0, 2)
    assert await count(engine, "lots") == 1
    assert await count(engine, "inventory_adjustments") == 1


# -- duplicates ------------------------------------------------------------------------


async def test_an_existing_sku_is_a_duplicate(uow: UnitOfWorkFactory, engine: AsyncEngine) -> None:
    await helpers.item(uow, "WIDGET")

    error = await fails(
        ErrorCode.DUPLICATE, catalog.create_item(uow, "WIDGET", "Another", True, "BOX")
    )

    assert error.subject is Subject.ITEM
    assert await rows(engine, "SELECT sku, name, serialized, unit FROM items") == [
        ("WIDGET", "Widget", False, "EA")
    ]


async def test_an_existing_location_code_is_a_duplicate(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.location(uow, "BIN-1", 1)

    error = await fails(ErrorCode.DUPLICATE, catalog.create_location(uow, "BIN-1", "Elsewhere", 9))

    assert error.subject is Subject.LOCATION
    assert await rows(engine, "SELECT code, name, pick_sequence FROM locations") == [
        ("BIN-1", "BIN-1", 1)
    ]


async def test_an_existing_order_number_is_a_duplicate(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 5)
    first = await helpers.order(uow, ("WIDGET", 1), number="PO-42")

    error = await fails(ErrorCode.DUPLICATE, helpers.order(uow, ("WIDGET", 3), number="PO-42"))

    assert error.subject is Subject.ORDER_NUMBER
    assert await rows(engine, "SELECT id, number FROM sales_orders") == [(first, "PO-42")]
    assert await rows(engine, "SELECT order_id, quantity FROM sales_order_lines") == [(first, 1)]


# -- backorders ------------------------------------------------------------------------


async def short_order(uow: UnitOfWorkFactory, engine: AsyncEngine) -> tuple[int, int, int]:
    """WIDGET x 10 with 4 in stock: allocated 4, an OPEN backorder for 6.

    Returns the order, its line and the backorder."""
    await helpers.one_balance(uow, 4)
    order_id = await helpers.order(uow, ("WIDGET", 10))
    await orders.allocate_order(uow, order_id)
    order = await reload(uow, order_id)
    ((backorder_id, quantity, status),) = await rows(
        engine, "SELECT id, quantity, status FROM backorders"
    )
    assert (quantity, status) == (6, "OPEN")
    return order_id, ids(order.lines)[0], backorder_id


async def test_cancelling_a_backorder_moves_its_remaining_to_the_lines_quantity_cancelled(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    order_id, line_id, backorder_id = await short_order(uow, engine)

    await orders.cancel_backorder(uow, backorder_id, "customer will not wait")

    assert await rows(engine, "SELECT status, cancel_reason, quantity FROM backorders") == [
        ("CANCELLED", "customer will not wait", 6)
    ]
    assert await rows(engine, "SELECT id, quantity, quantity_cancelled FROM sales_order_lines") == [
        (line_id, 10, 6)
    ]
    order = await reload(uow, order_id)
    assert order.open_demand(order.lines[0]) == 0


async def test_cancelling_or_deleting_a_backorder_with_a_stale_version_changes_nothing(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    order_id, _, backorder_id = await short_order(uow, engine)
    version = (await reload(uow, order_id)).version

    for call in (
        orders.cancel_backorder(uow, backorder_id, None, expected_version=version - 1),
        orders.delete_backorder(uow, backorder_id, expected_version=version - 1),
    ):
        error = await fails(ErrorCode.VERSION_CONFLICT, call)
        assert (error.current_version, error.subject) == (version, Subject.EXPECTED_VERSION)

    assert await rows(engine, "SELECT status FROM backorders") == [("OPEN",)]
    await orders.cancel_backorder(uow, backorder_id, None, expected_version=version)
    assert (await reload(uow, order_id)).version == version + 1


async def test_a_cancelled_backorder_is_not_recreated_when_stock_arrives_short(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    order_id, _, backorder_id = await short_order(uow, engine)
    await orders.cancel_backorder(uow, backorder_id)
    await helpers.stock(uow, "WIDGET", "L2", "BIN-1", 2, received_day=9)
    before = await snapshot(engine, order_id)

    result = await orders.allocate_order(uow, order_id)

    assert result.allocations == []
    assert await snapshot(engine, order_id) == before
    assert await rows(engine, "SELECT id, status FROM backorders") == [(backorder_id, "CANCELLED")]
    assert await balance(engine, "L2") == Balance(2, 0, 2)


async def test_a_deleted_backorder_is_recreated_by_the_next_allocation_if_still_short(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    order_id, line_id, backorder_id = await short_order(uow, engine)
    await orders.delete_backorder(uow, backorder_id)
    assert await count(engine, "backorders") == 0
    await helpers.stock(uow, "WIDGET", "L2", "BIN-1", 2, received_day=9)

    result = await orders.allocate_order(uow, order_id)

    assert [a.quantity for a in result.allocations] == [2]
    ((new_id, line, quantity, allocated, status),) = await rows(
        engine, "SELECT id, line_id, quantity, quantity_allocated, status FROM backorders"
    )
    assert new_id != backorder_id
    assert (line, quantity - allocated, status) == (line_id, 4, "OPEN")
    assert await rows(engine, "SELECT quantity_cancelled FROM sales_order_lines") == [(0,)]


async def test_a_backorder_filled_by_new_stock_becomes_allocated(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    order_id = await walkthrough_allocated(uow)
    await orders.pack_allocated_order(uow, order_id, None)
    ((backorder_id,),) = await rows(engine, "SELECT id FROM backorders")
    await helpers.stock(uow, "SELF-TAP-SCREW", "S2", "A-03", 100, received_day=20)

    result = await orders.allocate_order(uow, order_id)

    assert [a.quantity for a in result.allocations] == [3]
    assert await rows(
        engine, "SELECT id, quantity, quantity_allocated, status FROM backorders"
    ) == [(backorder_id, 3, 3, "ALLOCATED")]
    assert await balance(engine, "S2") == Balance(100, 3, 3)
    order = await reload(uow, order_id)
    assert order.open_backorder(ids(order.lines)[1]) is None


@pytest.mark.parametrize("action", ["cancel", "delete"])
async def test_a_cancelled_backorder_cannot_be_cancelled_or_deleted(
    uow: UnitOfWorkFactory, engine: AsyncEngine, action: str
) -> None:
    order_id, _, backorder_id = await short_order(uow, engine)
    await orders.cancel_backorder(uow, backorder_id)
    before = await snapshot(engine, order_id)

    call = (
        orders.cancel_backorder(uow, backorder_id)
        if action == "cancel"
        else orders.delete_backorder(uow, backorder_id)
    )
    await fails(ErrorCode.BACKORDER_NOT_OPEN, call)

    assert await snapshot(engine, order_id) == before
    assert await rows(engine, "SELECT quantity_cancelled FROM sales_order_lines") == [(6,)]


@pytest.mark.parametrize("action", ["cancel", "delete"])
async def test_an_allocated_backorder_cannot_be_cancelled_or_deleted(
    uow: UnitOfWorkFactory, engine: AsyncEngine, action: str
) -> None:
    order_id, _, backorder_id = await short_order(uow, engine)
    await helpers.stock(uow, "WIDGET", "L2", "BIN-1", 6, received_day=9)
    await orders.allocate_order(uow, order_id)
    before = await snapshot(engine, order_id)
    assert [(b[0], b[4]) for b in before.backorders] == [(backorder_id, "ALLOCATED")]

    call = (
        orders.cancel_backorder(uow, backorder_id)
        if action == "cancel"
        else orders.delete_backorder(uow, backorder_id)
    )
    await fails(ErrorCode.BACKORDER_NOT_OPEN, call)

    assert await snapshot(engine, order_id) == before


# -- strategies ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "expected_lot"),
    [
        (AllocationStrategy.FEFO, "EXPIRES-SOON"),
        (AllocationStrategy.FIFO, "OLDEST"),
        (AllocationStrategy.LOCATION, "NEAREST"),
    ],
)
async def test_the_allocation_strategy_chooses_which_balance_is_used(
    uow: UnitOfWorkFactory, engine: AsyncEngine, strategy: AllocationStrategy, expected_lot: str
) -> None:
    await helpers.item(uow, "WIDGET")
    for code, sequence in (("FAR", 30), ("MIDDLE", 20), ("NEAR", 10)):
        await helpers.location(uow, code, sequence)
    # Received first, expires late, far away.
    await helpers.stock(uow, "WIDGET", "OLDEST", "FAR", 5, received_day=1, expires_day=28)
    # Received second, expires first, in the middle.
    await helpers.stock(uow, "WIDGET", "EXPIRES-SOON", "MIDDLE", 5, received_day=2, expires_day=3)
    # Received last, never expires, nearest in walking order.
    await helpers.stock(uow, "WIDGET", "NEAREST", "NEAR", 5, received_day=3)
    order_id = await helpers.order(uow, ("WIDGET", 5))

    result = await orders.allocate_order(uow, order_id, strategy=strategy)

    assert len(result.allocations) == 1
    used = await rows(
        engine,
        "SELECT l.lot_number, b.allocated FROM inventory_balances b"
        " JOIN lots l ON l.id = b.lot_id WHERE b.allocated > 0",
    )
    assert used == [(expected_lot, 5)]


async def test_fefo_puts_stock_without_expiry_last_and_spills_over_in_order(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.item(uow, "WIDGET")
    await helpers.location(uow, "BIN-1")
    await helpers.stock(uow, "WIDGET", "NO-EXPIRY", "BIN-1", 10, received_day=1)
    await helpers.stock(uow, "WIDGET", "LATE", "BIN-1", 3, received_day=5, expires_day=20)
    await helpers.stock(uow, "WIDGET", "EARLY", "BIN-1", 3, received_day=6, expires_day=10)
    order_id = await helpers.order(uow, ("WIDGET", 8))

    await orders.allocate_order(uow, order_id)

    used = await rows(
        engine,
        "SELECT l.lot_number, a.quantity FROM allocations a"
        " JOIN inventory_balances b ON b.id = a.balance_id JOIN lots l ON l.id = b.lot_id"
        " ORDER BY a.id",
    )
    assert used == [("EARLY", 3), ("LATE", 3), ("NO-EXPIRY", 2)]
