"""fillBackorders at the service layer, on real PostgreSQL: the fill order, partial
fills, the limit, FEFO, the versions of the orders touched, and the ledger."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services import orders
from services.domain.errors import DomainError, ErrorCode, Subject
from services.fill import fill_backorders
from services.ports import UnitOfWorkFactory
from tests.ledger import unbalanced
from tests.load import checker
from tests.service import helpers
from tests.service.races import world


async def backordered(
    uow: UnitOfWorkFactory, quantity: int, priority: int, sku: str = "WIDGET"
) -> int:
    """An order for `quantity` of the item, allocated with none in stock: all backordered."""
    order_id = await orders.create_sales_order(
        uow, "C", None, [orders.LineInput(sku, quantity)], priority
    )
    await orders.allocate_order(uow, order_id)
    return order_id


async def test_higher_priority_first_then_older_and_stock_for_one_and_a_half(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 0)
    low = await backordered(uow, 4, priority=0)
    first = await backordered(uow, 4, priority=5)
    second = await backordered(uow, 4, priority=5)
    balance = await helpers.stock(uow, "WIDGET", "L1", "BIN-1", 6)
    before = await world(engine)
    balance_version = (await checker.read_snapshot(engine)).balances[balance].version

    result = await fill_backorders(uow, "WIDGET")

    snapshot = await checker.read_snapshot(engine)
    # Two orders drew on the balance in one change of it: one new version, and one
    # ALLOCATE movement per allocation line, each naming its own order.
    assert snapshot.balances[balance].version == balance_version + 1
    async with engine.connect() as conn:
        moved = (
            await conn.execute(
                text(
                    "SELECT sales_order_id, allocated_delta FROM movements "
                    "WHERE kind = 'ALLOCATE' ORDER BY id"
                )
            )
        ).all()
    assert [tuple(row) for row in moved] == [(first, 4), (second, 2)]
    by_order = {b.order_id: b for b in snapshot.backorders.values()}
    assert result.backorder_ids == [by_order[first].id, by_order[second].id]
    assert [(a.line_id, a.balance_id, a.quantity) for a in result.allocations] == [
        (by_order[first].line_id, balance, 4),
        (by_order[second].line_id, balance, 2),
    ]
    after = await world(engine)  # also: stock equals what the orders say (SPEC 4)
    assert after.balances == {balance: (6, 6)}
    assert sorted(after.backorders) == sorted([
        (by_order[low].line_id, 4, 0, "OPEN"),
        (by_order[first].line_id, 4, 4, "ALLOCATED"),
        (by_order[second].line_id, 4, 2, "OPEN"),
    ])  # fmt: skip
    assert after.versions == {
        low: before.versions[low],
        first: before.versions[first] + 1,
        second: before.versions[second] + 1,
    }
    assert await unbalanced(engine) == []


async def test_the_limit_caps_the_backorders_touched(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 0)
    first = await backordered(uow, 2, priority=0)
    later = await backordered(uow, 2, priority=0)
    await helpers.stock(uow, "WIDGET", "L1", "BIN-1", 10)

    result = await fill_backorders(uow, "WIDGET", limit=1)

    statuses = {
        b.order_id: b.status for b in (await checker.read_snapshot(engine)).backorders.values()
    }
    assert statuses == {first: "ALLOCATED", later: "OPEN"}
    assert len(result.backorder_ids) == 1
    assert (await fill_backorders(uow, "WIDGET", limit=1)).allocations[0].quantity == 2


async def test_stock_is_taken_earliest_expiry_first(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 0)
    await backordered(uow, 3, priority=0)
    later = await helpers.stock(uow, "WIDGET", "LATE", "BIN-1", 5, received_day=1, expires_day=20)
    sooner = await helpers.stock(uow, "WIDGET", "SOON", "BIN-1", 2, received_day=9, expires_day=10)

    result = await fill_backorders(uow, "WIDGET")

    assert [(a.balance_id, a.quantity) for a in result.allocations] == [(sooner, 2), (later, 1)]
    assert await unbalanced(engine) == []


async def test_a_line_raised_after_it_was_backordered_is_filled_as_allocate_order_would(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 0)
    order_id = await backordered(uow, 3, priority=0)
    (line,) = (await checker.read_snapshot(engine)).lines_of(order_id)
    await orders.update_sales_order_line(uow, line.id, 5)  # the backorder stays at 3
    await helpers.stock(uow, "WIDGET", "L1", "BIN-1", 4)

    await fill_backorders(uow, "WIDGET")

    # 4 of the line's open 5: the backorder for 3 is checked off and 1 waits on a new one.
    after = await world(engine)
    assert sorted(after.backorders) == [(line.id, 1, 0, "OPEN"), (line.id, 3, 3, "ALLOCATED")]


async def test_only_the_backordered_lines_of_the_item_are_filled(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 0)
    await helpers.item(uow, "NUT")
    order_id = await orders.create_sales_order(
        uow, "C", None, [orders.LineInput("WIDGET", 2), orders.LineInput("NUT", 2)]
    )
    await orders.allocate_order(uow, order_id)
    await helpers.stock(uow, "WIDGET", "L1", "BIN-1", 5)
    await helpers.stock(uow, "NUT", "N1", "BIN-1", 5)

    await fill_backorders(uow, "WIDGET")

    after = await world(engine)
    assert sorted(after.balances.values()) == [(5, 0), (5, 2)]
    assert sorted(status for *_, status in after.backorders) == ["ALLOCATED", "OPEN"]


async def test_nothing_to_fill_writes_nothing(uow: UnitOfWorkFactory, engine: AsyncEngine) -> None:
    await helpers.one_balance(uow, 2)
    await backordered(uow, 2, priority=0)  # takes all there is
    await backordered(uow, 2, priority=0)
    before = await world(engine)

    result = await fill_backorders(uow, "WIDGET")  # none available

    assert (result.backorder_ids, result.allocations) == ([], [])
    assert await world(engine) == before


async def test_a_serialized_item_has_nothing_to_fill(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.item(uow, "SERIAL", serialized=True)
    result = await fill_backorders(uow, "SERIAL")
    assert (result.backorder_ids, result.allocations) == ([], [])


async def test_an_unknown_item_or_a_bad_limit_is_refused(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    with pytest.raises(DomainError) as unknown:
        await fill_backorders(uow, "NOPE")
    assert (unknown.value.code, unknown.value.subject) == (ErrorCode.NOT_FOUND, Subject.ITEM)
    await helpers.item(uow, "WIDGET")
    with pytest.raises(DomainError) as bad:
        await fill_backorders(uow, "WIDGET", limit=0)
    assert (bad.value.code, bad.value.subject) == (ErrorCode.INVALID_INPUT, Subject.LIMIT)


async def test_two_backordered_lines_of_one_order_are_filled_with_one_new_version(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 0)
    order_id = await orders.create_sales_order(
        uow, "C", None, [orders.LineInput("WIDGET", 2), orders.LineInput("WIDGET", 3)]
    )
    await orders.allocate_order(uow, order_id)
    first, second = (await checker.read_snapshot(engine)).lines_of(order_id)
    await helpers.stock(uow, "WIDGET", "L1", "BIN-1", 4)
    before = await world(engine)

    result = await fill_backorders(uow, "WIDGET")

    assert [a.line_id for a in result.allocations] == [first.id, second.id]  # by backorder
    after = await world(engine)
    assert after.versions == {order_id: before.versions[order_id] + 1}
    assert sorted(after.backorders) == [(first.id, 2, 2, "ALLOCATED"), (second.id, 3, 2, "OPEN")]
