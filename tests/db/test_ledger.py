"""The movement ledger (SPEC section 8) in the database: append-only, written with every
change to a balance, and opened with the figures of balances that existed before it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from alembic import command
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import alembic_config, create_engine
from services import catalog, orders
from services.ports import UnitOfWorkFactory
from tests.conftest import admin_execute
from tests.ledger import unbalanced, unbalanced_on
from tests.service import helpers


async def movements(engine: AsyncEngine) -> list[tuple[object, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT kind, on_hand_delta, allocated_delta, sales_order_line_id IS NOT NULL,"
                " allocation_id IS NOT NULL, allocation_name, actor, reason"
                " FROM movements ORDER BY id"
            )
        )
        return [tuple(row) for row in rows]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE movements SET on_hand_delta = on_hand_delta + 1",
        "UPDATE movements SET actor = 'someone else'",
        "UPDATE movements SET allocation_name = 'AL-999999'",
        "UPDATE movements SET sales_order_line_id = balance_id",
        "DELETE FROM movements",
    ],
)
async def test_the_database_refuses_to_change_or_delete_a_movement(
    uow: UnitOfWorkFactory, engine: AsyncEngine, statement: str
) -> None:
    await helpers.one_balance(uow, 5)
    before = await movements(engine)
    assert before == [("RECEIPT", 5, 0, False, False, None, "system", "test")]

    with pytest.raises(DBAPIError, match="append-only"):
        async with engine.begin() as conn:
            await conn.execute(text(statement))

    assert await movements(engine) == before


async def test_each_change_to_stock_is_one_movement_per_allocation_line_with_who_and_why(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 10)
    order_id = await helpers.order(uow, ("WIDGET", 4), ("WIDGET", 3))
    first = await orders.allocate_order(uow, order_id)
    await orders.remove_allocation_lines(uow, first.allocation_ids[1:], None, "wrong pallet")
    await orders.allocate_order(uow, order_id)
    await orders.pack_allocated_order(uow, order_id, None)
    await catalog.adjust_inventory(uow, catalog.Adjustment("WIDGET", "L1", "BIN-1", -2, ""))

    name = f"AL-{first.allocation_ids[1]:06d}"
    assert await movements(engine) == [
        ("RECEIPT", 10, 0, False, False, None, "system", "test"),
        ("ALLOCATE", 0, 4, True, True, f"AL-{first.allocation_ids[0]:06d}", "system", None),
        ("ALLOCATE", 0, 3, True, False, name, "system", None),  # removed since: no longer named
        ("DEALLOCATE", 0, -3, True, False, name, "system", "wrong pallet"),
        ("ALLOCATE", 0, 3, True, True, f"AL-{first.allocation_ids[1] + 1:06d}", "system", None),
        ("PACK", -4, -4, True, True, f"AL-{first.allocation_ids[0]:06d}", "system", None),
        ("PACK", -3, -3, True, True, f"AL-{first.allocation_ids[1] + 1:06d}", "system", None),
        ("WRITE_OFF", -2, 0, False, False, None, "system", None),
    ]
    assert await unbalanced(engine) == []


async def test_a_refused_change_writes_no_movement(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 2)
    order_id = await helpers.order(uow, ("WIDGET", 2))
    await orders.allocate_order(uow, order_id)
    before = await movements(engine)

    with pytest.raises(Exception, match="below the quantity allocated"):
        await catalog.adjust_inventory(uow, catalog.Adjustment("WIDGET", "L1", "BIN-1", -1, "x"))

    assert await movements(engine) == before


@pytest.fixture
async def scratch_url(server_url: str) -> AsyncIterator[str]:
    name = f"allocation_ledger_{uuid.uuid4().hex[:8]}"
    await admin_execute(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        await admin_execute(server_url, f'DROP DATABASE "{name}" WITH (FORCE)')


async def test_the_migration_opens_the_ledger_with_the_balances_that_exist(
    scratch_url: str,
) -> None:
    """A database made before the ledger (revision 0003) with stock and allocations."""
    config = alembic_config(scratch_url)
    await asyncio.to_thread(command.upgrade, config, "0003")
    engine = create_engine(scratch_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            for statement in (
                "INSERT INTO items (sku, name) VALUES ('A', 'A'), ('B', 'B')",
                "INSERT INTO locations (code, name) VALUES ('L', 'L')",
                "INSERT INTO lots (item_id, lot_number) VALUES (1, 'A1'), (2, 'B1')",
                "INSERT INTO inventory_balances (item_id, lot_id, location_id, on_hand, allocated)"
                " VALUES (1, 1, 1, 12, 5), (2, 2, 1, 0, 0)",
            ):
                await conn.execute(text(statement))
        await asyncio.to_thread(command.upgrade, config, "0004")
        async with engine.connect() as conn:
            opening = list(
                await conn.execute(
                    text(
                        "SELECT balance_id, kind, on_hand_delta, allocated_delta, actor,"
                        " request_id FROM movements ORDER BY id"
                    )
                )
            )
            assert await unbalanced_on(conn) == []
        assert [tuple(row) for row in opening] == [
            (1, "OPENING", 12, 5, "system", None),
            (2, "OPENING", 0, 0, "system", None),
        ]
    finally:
        await engine.dispose()
