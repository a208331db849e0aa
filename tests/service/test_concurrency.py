"""Races forced with a barrier: both transactions plan from the same stock, then write.

Each client has its own unit of work, so its own pooled connection and real commits.
"""

from __future__ import annotations

import asyncio
from typing import Self

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.database import Database
from db.repositories import SqlOrders, SqlUnitOfWork
from services import orders, retry
from services.domain.errors import DomainError, ErrorCode
from services.domain.order import SalesOrder
from services.ports import UnitOfWorkFactory
from tests.service import helpers


class Gate:
    """Holds the first save of each client (its claim of the order, then its reserve)
    until all clients have planned."""

    def __init__(self, parties: int) -> None:
        self.barrier = asyncio.Barrier(parties)

    def client(self, database: Database) -> UnitOfWorkFactory:
        first_attempt = True

        class RacingOrders(SqlOrders):
            async def save(self, order: SalesOrder) -> None:
                nonlocal first_attempt
                if first_attempt:
                    first_attempt = False
                    await gate.barrier.wait()
                await super().save(order)

        class RacingUnitOfWork(SqlUnitOfWork):
            async def __aenter__(self) -> Self:
                await super().__aenter__()
                self.orders = RacingOrders(self.session, self.written, self.actor)
                return self

        gate = self
        return lambda: RacingUnitOfWork(database)


async def balance(engine: AsyncEngine, balance_id: int | None) -> tuple[int, int]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT on_hand, allocated FROM inventory_balances WHERE id = :id"),
                {"id": balance_id},
            )
        ).one()
    return row.on_hand, row.allocated


async def test_two_orders_racing_for_the_last_units_never_over_allocate(
    uow: UnitOfWorkFactory,
    database: Database,
    engine: AsyncEngine,
) -> None:
    balance_id = await helpers.one_balance(uow, 5)
    first = await helpers.order(uow, ("WIDGET", 5))
    second = await helpers.order(uow, ("WIDGET", 5))
    gate = Gate(2)
    retries_before = retry.retry_count

    results = await asyncio.gather(
        orders.allocate_order(gate.client(database), first),
        orders.allocate_order(gate.client(database), second),
    )

    assert await balance(engine, balance_id) == (5, 5)
    assert sorted(sum(a.quantity for a in r.allocations) for r in results) == [0, 5]
    # The loser's guarded reserve failed; it was retried, saw no stock, and backordered.
    assert retry.retry_count > retries_before
    async with uow() as u:
        loaded = [await u.orders.get(order_id) for order_id in (first, second)]
    backordered = sorted(sum(b.remaining for b in o.backorders) for o in loaded if o)
    assert backordered == [0, 5]


async def test_the_same_order_allocated_twice_at_once_is_allocated_once(
    uow: UnitOfWorkFactory,
    database: Database,
    engine: AsyncEngine,
) -> None:
    balance_id = await helpers.one_balance(uow, 10)
    order_id = await helpers.order(uow, ("WIDGET", 5))
    gate = Gate(2)

    await asyncio.gather(
        orders.allocate_order(gate.client(database), order_id),
        orders.allocate_order(gate.client(database), order_id),
    )

    assert await balance(engine, balance_id) == (10, 5)
    async with uow() as u:
        order = await u.orders.get(order_id)
    assert order is not None
    assert [a.quantity for a in order.allocations] == [5]
    assert order.version == 2  # created (1), allocated once (2)


async def test_a_client_guarding_with_its_version_gets_version_conflict_when_it_loses(
    uow: UnitOfWorkFactory,
    database: Database,
    engine: AsyncEngine,
) -> None:
    balance_id = await helpers.one_balance(uow, 10)
    order_id = await helpers.order(uow, ("WIDGET", 5))
    async with uow() as u:
        version = await u.orders.current_version(order_id)
    gate = Gate(2)

    results = await asyncio.gather(
        orders.allocate_order(gate.client(database), order_id, expected_version=version),
        orders.allocate_order(gate.client(database), order_id, expected_version=version),
        return_exceptions=True,
    )

    conflicts = [r for r in results if isinstance(r, DomainError)]
    assert len(conflicts) == 1
    assert conflicts[0].code is ErrorCode.VERSION_CONFLICT
    assert version is not None
    assert conflicts[0].current_version == version + 1
    assert await balance(engine, balance_id) == (10, 5)
