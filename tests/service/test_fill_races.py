"""fillBackorders racing allocateOrder on the same item, the interleaving forced with the
barrier of races.py: both load and plan, one writes and commits, then the other writes on
its stale read. The end must be the serial run in which the first writer went first;
`races.world` also requires that stock equals what the orders say and every backorder's
figures add up (tests/load/checker.py), and the ledger equation must hold."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services import orders
from services.fill import fill_backorders
from services.ports import UnitOfWorkFactory
from tests.ledger import unbalanced
from tests.load import checker
from tests.service import helpers
from tests.service.races import Serial, assert_serial, race, world


async def backordered(uow: UnitOfWorkFactory, quantity: int, priority: int = 0) -> int:
    order_id = await orders.create_sales_order(
        uow, "C", None, [orders.LineInput("WIDGET", quantity)], priority
    )
    await orders.allocate_order(uow, order_id)
    return order_id


async def only_line(engine: AsyncEngine, order_id: int) -> int:
    (line,) = (await checker.read_snapshot(engine)).lines_of(order_id)
    return line.id


@pytest.mark.parametrize("first", ["fill", "allocate"])
async def test_a_fill_and_an_allocation_of_another_order_never_over_allocate(
    uow: UnitOfWorkFactory, engine: AsyncEngine, first: str
) -> None:
    await helpers.one_balance(uow, 0)
    waiting = await backordered(uow, 4, priority=5)  # a backorder for 4
    balance = await helpers.stock(uow, "WIDGET", "L1", "BIN-1", 5)
    newcomer = await helpers.order(uow, ("WIDGET", 3))
    waiting_line, newcomer_line = (
        await only_line(engine, waiting),
        await only_line(engine, newcomer),
    )
    before = await world(engine)
    assert before.versions == {waiting: 2, newcomer: 1}

    result = await race(
        uow,
        {
            "fill": lambda u: fill_backorders(u, "WIDGET"),
            "allocate": lambda u: orders.allocate_order(u, newcomer),
        },
        first,
    )

    # 4 + 3 wanted of 5: the loser's reservation fails its balance guard, and it plans
    # again on what the winner left.
    filled_first = replace(
        before,
        balances={balance: (5, 5)},
        versions={waiting: 3, newcomer: 2},
        allocations=sorted([(waiting_line, balance, 4, 0), (newcomer_line, balance, 1, 0)]),
        backorders=sorted([(waiting_line, 4, 4, "ALLOCATED"), (newcomer_line, 2, 0, "OPEN")]),
    )
    allocated_first = replace(
        before,
        balances={balance: (5, 5)},
        versions={waiting: 3, newcomer: 2},
        allocations=sorted([(waiting_line, balance, 2, 0), (newcomer_line, balance, 3, 0)]),
        backorders=[(waiting_line, 4, 2, "OPEN")],
    )
    done = {"fill": "done", "allocate": "done"}
    serial = {
        "fill": Serial(filled_first, done, retries=1),
        "allocate": Serial(allocated_first, done, retries=1),
    }
    assert_serial(await world(engine), result, serial, first)
    assert await unbalanced(engine) == []


@pytest.mark.parametrize("first", ["fill", "allocate"])
async def test_a_fill_and_an_allocation_of_the_same_order_fill_its_backorder_once(
    uow: UnitOfWorkFactory, engine: AsyncEngine, first: str
) -> None:
    await helpers.one_balance(uow, 0)
    waiting = await backordered(uow, 4)
    balance = await helpers.stock(uow, "WIDGET", "L1", "BIN-1", 10)
    line = await only_line(engine, waiting)
    before = await world(engine)

    result = await race(
        uow,
        {
            "fill": lambda u: fill_backorders(u, "WIDGET"),
            "allocate": lambda u: orders.allocate_order(u, waiting),
        },
        first,
    )

    # 4 + 4 of 10 would pass the balance guard: only the order's claim (its version)
    # stops the loser, which then finds nothing left to do.
    once = replace(
        before,
        balances={balance: (10, 4)},
        versions={waiting: 3},
        allocations=[(line, balance, 4, 0)],
        backorders=[(line, 4, 4, "ALLOCATED")],
    )
    done = {"fill": "done", "allocate": "done"}
    serial = {"fill": Serial(once, done, retries=1), "allocate": Serial(once, done, retries=1)}
    assert_serial(await world(engine), result, serial, first)
    assert await unbalanced(engine) == []
