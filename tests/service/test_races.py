"""Two use cases at once on the same order or stock, the interleaving forced (races.py):
both load and plan, then one writes and finishes, then the other writes on a stale read.

Each race runs once per choice of who writes first. The end must be one of the two serial
runs, A then B or B then A, worked out below from SPEC section 4: the end state, what
each client was told, and the loser's one internal retry (it lost at write time and ran
again on fresh rows). `races.world` also requires that stock equals what the orders say.

Where a balance guard alone could catch the loser, a bystander order holds stock on the
same balance, so that only the order's version can: these races fail if it is not checked.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services import catalog, orders
from services.ports import UnitOfWorkFactory
from tests.load import checker
from tests.service import helpers
from tests.service.races import Serial, assert_serial, race, world


async def line_ids(engine: AsyncEngine, order_id: int) -> list[int]:
    """The order's lines in line-number order."""
    return [line.id for line in (await checker.read_snapshot(engine)).lines_of(order_id)]


async def allocation_ids(engine: AsyncEngine, line_id: int) -> list[int]:
    snapshot = await checker.read_snapshot(engine)
    return sorted(a.id for a in snapshot.allocations_by_line.get(line_id, []))


async def open_backorder_id(engine: AsyncEngine, line_id: int) -> int:
    snapshot = await checker.read_snapshot(engine)
    (backorder,) = snapshot.open_backorders_by_line[line_id]
    return backorder.id


@pytest.mark.parametrize("first", ["remove X", "remove Y and X"])
async def test_two_removals_of_the_same_allocation_line_release_its_stock_once(
    uow: UnitOfWorkFactory, engine: AsyncEngine, first: str
) -> None:
    balance = await helpers.one_balance(uow, 20)
    assert balance is not None
    order_id = await helpers.order(uow, ("WIDGET", 5), ("WIDGET", 3))
    await orders.allocate_order(uow, order_id)
    line_x, line_y = await line_ids(engine, order_id)
    (x,) = await allocation_ids(engine, line_x)
    (y,) = await allocation_ids(engine, line_y)
    bystander = await helpers.order(uow, ("WIDGET", 12))
    await orders.allocate_order(uow, bystander)
    (bystander_line,) = await line_ids(engine, bystander)
    before = await world(engine)
    assert before.balances == {balance: (20, 20)}
    assert before.versions == {order_id: 2, bystander: 2}

    result = await race(
        uow,
        {
            "remove X": lambda u: orders.remove_allocation_lines(u, [x], None),
            "remove Y and X": lambda u: orders.remove_allocation_lines(u, [y, x], None),
        },
        first,
    )

    # The loser finds X gone (all or nothing: Y stays if it named Y too); X's 5 come
    # back once, never twice, however the loser's release was guarded.
    only_x_removed = replace(
        before,
        balances={balance: (20, 15)},
        versions={order_id: 3, bystander: 2},
        allocations=[(line_y, balance, 3, 0), (bystander_line, balance, 12, 0)],
    )
    both_removed = replace(
        before,
        balances={balance: (20, 12)},
        versions={order_id: 3, bystander: 2},
        allocations=[(bystander_line, balance, 12, 0)],
    )
    serial = {
        "remove X": Serial(
            only_x_removed, {"remove X": "done", "remove Y and X": "NOT_FOUND at 1"}, retries=1
        ),
        "remove Y and X": Serial(
            both_removed, {"remove X": "NOT_FOUND at 0", "remove Y and X": "done"}, retries=1
        ),
    }
    assert_serial(await world(engine), result, serial, first)


@pytest.mark.parametrize("first", ["pack", "remove"])
async def test_packing_and_removing_the_same_allocation_line_end_as_one_after_the_other(
    uow: UnitOfWorkFactory, engine: AsyncEngine, first: str
) -> None:
    balance = await helpers.one_balance(uow, 10)
    assert balance is not None
    order_id = await helpers.order(uow, ("WIDGET", 5))
    await orders.allocate_order(uow, order_id)
    (line,) = await line_ids(engine, order_id)
    (allocation,) = await allocation_ids(engine, line)
    bystander = await helpers.order(uow, ("WIDGET", 5))
    await orders.allocate_order(uow, bystander)
    (bystander_line,) = await line_ids(engine, bystander)
    before = await world(engine)
    assert before.balances == {balance: (10, 10)}

    result = await race(
        uow,
        {
            "pack": lambda u: orders.pack_allocated_order(u, order_id, None),
            "remove": lambda u: orders.remove_allocation_lines(u, [allocation], None),
        },
        first,
    )

    packed = replace(
        before,
        balances={balance: (5, 5)},
        versions={order_id: 3, bystander: 2},
        allocations=sorted([(line, balance, 5, 5), (bystander_line, balance, 5, 0)]),
        packed=[(line, 5)],
    )
    removed = replace(
        before,
        balances={balance: (10, 5)},
        versions={order_id: 3, bystander: 2},
        allocations=[(bystander_line, balance, 5, 0)],
    )
    serial = {
        "pack": Serial(packed, {"pack": "done", "remove": "ALLOCATION_PACKED at 0"}, retries=1),
        "remove": Serial(removed, {"pack": "NOTHING_TO_PACK", "remove": "done"}, retries=1),
    }
    assert_serial(await world(engine), result, serial, first)


@pytest.mark.parametrize("first", ["write-off", "allocate"])
async def test_a_write_off_racing_an_allocation_never_takes_on_hand_below_allocated(
    uow: UnitOfWorkFactory, engine: AsyncEngine, first: str
) -> None:
    balance = await helpers.one_balance(uow, 10)
    assert balance is not None
    order_id = await helpers.order(uow, ("WIDGET", 8))
    (line,) = await line_ids(engine, order_id)
    write_off = catalog.Adjustment("WIDGET", "L1", "BIN-1", -5, "damaged")
    before = await world(engine)

    result = await race(
        uow,
        {
            "write-off": lambda u: catalog.adjust_inventory(u, write_off),
            "allocate": lambda u: orders.allocate_order(u, order_id),
        },
        first,
    )

    # Written off first: 5 are left to allocate and 3 are backordered. Allocated first:
    # 8 of 10 are reserved, so taking 5 off would leave 5 on hand under 8 allocated.
    written_off_then_allocated = replace(
        before,
        balances={balance: (5, 5)},
        versions={order_id: 2},
        allocations=[(line, balance, 5, 0)],
        backorders=[(line, 3, 0, "OPEN")],
    )
    allocated_then_refused = replace(
        before,
        balances={balance: (10, 8)},
        versions={order_id: 2},
        allocations=[(line, balance, 8, 0)],
    )
    serial = {
        # The allocation planned on 10 available; its guarded reserve failed, so it ran again.
        "write-off": Serial(
            written_off_then_allocated, {"write-off": "done", "allocate": "done"}, retries=1
        ),
        # The write-off is one guarded statement: refused without a retry.
        "allocate": Serial(
            allocated_then_refused,
            {"write-off": "INSUFFICIENT_STOCK", "allocate": "done"},
            retries=0,
        ),
    }
    assert_serial(await world(engine), result, serial, first)


@pytest.mark.parametrize("arrived", [6, 2], ids=["stock-fills-it", "stock-fills-part"])
@pytest.mark.parametrize("first", ["cancel", "allocate"])
async def test_cancelling_a_backorder_while_new_stock_is_allocated_to_it_ends_serially(
    uow: UnitOfWorkFactory, engine: AsyncEngine, first: str, arrived: int
) -> None:
    short = await helpers.one_balance(uow, 4)
    assert short is not None
    order_id = await helpers.order(uow, ("WIDGET", 10))
    await orders.allocate_order(uow, order_id)
    (line,) = await line_ids(engine, order_id)
    backorder = await open_backorder_id(engine, line)
    new = await helpers.stock(uow, "WIDGET", "L2", "BIN-1", arrived, received_day=9)
    before = await world(engine)
    assert before.backorders == [(line, 6, 0, "OPEN")]
    assert before.versions == {order_id: 2}

    result = await race(
        uow,
        {
            "cancel": lambda u: orders.cancel_backorder(u, backorder, "not waiting"),
            "allocate": lambda u: orders.allocate_order(u, order_id),
        },
        first,
    )

    # Cancelled first: all 6 are cancelled, so the allocation has nothing left to reserve
    # and changes nothing (not even the version).
    cancelled = replace(
        before,
        versions={order_id: 3},
        lines={line: (10, 6)},
        backorders=[(line, 6, 0, "CANCELLED")],
    )
    # Allocated first: the new stock fills the backorder (ALLOCATED: cancelling it is
    # refused), or part of it (still OPEN: cancelling it cancels what is still missing).
    filled = replace(
        before,
        balances={short: (4, 4), new: (arrived, arrived)},
        versions={order_id: 3 if arrived == 6 else 4},
        lines={line: (10, 6 - arrived)},
        allocations=sorted([(line, short, 4, 0), (line, new, arrived, 0)]),
        backorders=[(line, 6, arrived, "ALLOCATED" if arrived == 6 else "CANCELLED")],
    )
    serial = {
        "cancel": Serial(cancelled, {"cancel": "done", "allocate": "done"}, retries=1),
        "allocate": Serial(
            filled,
            {"cancel": "BACKORDER_NOT_OPEN" if arrived == 6 else "done", "allocate": "done"},
            retries=1,
        ),
    }
    assert_serial(await world(engine), result, serial, first)


@pytest.mark.parametrize("first", ["delete line", "allocate"])
async def test_deleting_a_line_while_its_order_is_allocated_ends_serially(
    uow: UnitOfWorkFactory, engine: AsyncEngine, first: str
) -> None:
    balance = await helpers.one_balance(uow, 5)
    assert balance is not None
    order_id = await helpers.order(uow, ("WIDGET", 3), ("WIDGET", 4))
    kept, deleted = await line_ids(engine, order_id)
    before = await world(engine)

    result = await race(
        uow,
        {
            "delete line": lambda u: orders.delete_sales_order_line(u, deleted, None),
            "allocate": lambda u: orders.allocate_order(u, order_id),
        },
        first,
    )

    # Deleted first: only the kept line is allocated. Allocated first: the line has an
    # allocation line (and a backorder for the 2 not in stock), so it may not be deleted.
    deleted_then_allocated = replace(
        before,
        balances={balance: (5, 3)},
        versions={order_id: 3},
        lines={kept: (3, 0)},
        allocations=[(kept, balance, 3, 0)],
    )
    allocated_then_refused = replace(
        before,
        balances={balance: (5, 5)},
        versions={order_id: 2},
        allocations=sorted([(kept, balance, 3, 0), (deleted, balance, 2, 0)]),
        backorders=[(deleted, 2, 0, "OPEN")],
    )
    serial = {
        "delete line": Serial(
            deleted_then_allocated, {"delete line": "done", "allocate": "done"}, retries=1
        ),
        "allocate": Serial(
            allocated_then_refused,
            {"delete line": "LINE_HAS_ALLOCATIONS", "allocate": "done"},
            retries=1,
        ),
    }
    assert_serial(await world(engine), result, serial, first)
