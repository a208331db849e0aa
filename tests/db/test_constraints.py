"""The database itself refuses rows that break SPEC section 4, services bypassed.

Each case writes raw SQL straight through the engine; PostgreSQL must say no with
the right SQLSTATE (23514 check_violation, 23505 unique_violation) and the
constraint that caught it, and no table may have changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from db.errors import sqlstate
from db.tables import Base

CHECK = "23514"
UNIQUE = "23505"


@dataclass(frozen=True)
class Seed:
    """One of everything: WIDGET in lot L1 at BIN-1 (10 on hand, 4 allocated),
    a second lot L2 with no balance yet, an order whose line 1 (WIDGET x 10) has
    an allocation of 4, packed 1, and an OPEN backorder for 6; line 2 has neither."""

    item: int
    other_item: int
    location: int
    lot: int
    lot_without_balance: int
    balance: int
    order: int
    line: int
    line_without_backorder: int
    allocation: int
    backorder: int
    packed_line: int

    def params(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


async def seed(engine: AsyncEngine) -> Seed:
    async with engine.begin() as conn:

        async def insert(sql: str, **params: Any) -> int:
            new_id = await conn.scalar(text(sql + " RETURNING id"), params)
            assert isinstance(new_id, int)
            return new_id

        item = await insert("INSERT INTO items (sku, name) VALUES ('WIDGET', 'Widget')")
        other_item = await insert("INSERT INTO items (sku, name) VALUES ('GADGET', 'Gadget')")
        location = await insert("INSERT INTO locations (code, name) VALUES ('BIN-1', 'Bin 1')")
        lot = await insert("INSERT INTO lots (item_id, lot_number) VALUES (:item, 'L1')", item=item)
        lot2 = await insert(
            "INSERT INTO lots (item_id, lot_number) VALUES (:item, 'L2')", item=item
        )
        balance = await insert(
            "INSERT INTO inventory_balances (item_id, lot_id, location_id, on_hand, allocated)"
            " VALUES (:item, :lot, :location, 10, 4)",
            item=item,
            lot=lot,
            location=location,
        )
        order = await insert(
            "INSERT INTO sales_orders (number, customer, actor, updated_by)"
            " VALUES ('SO-1', 'Customer', 'test', 'test')"
        )
        line = await insert(
            "INSERT INTO sales_order_lines (order_id, line_number, item_id, quantity)"
            " VALUES (:order, 1, :item, 10)",
            order=order,
            item=item,
        )
        line2 = await insert(
            "INSERT INTO sales_order_lines (order_id, line_number, item_id, quantity)"
            " VALUES (:order, 2, :item, 3)",
            order=order,
            item=item,
        )
        allocation = await insert(
            "INSERT INTO allocations (order_id, line_id, balance_id, quantity, quantity_packed,"
            " actor) VALUES (:order, :line, :balance, 4, 1, 'test')",
            order=order,
            line=line,
            balance=balance,
        )
        backorder = await insert(
            "INSERT INTO backorders (order_id, line_id, quantity) VALUES (:order, :line, 6)",
            order=order,
            line=line,
        )
        packed_line = await insert(
            "INSERT INTO packed_lines (order_id, line_id, quantity, actor)"
            " VALUES (:order, :line, 1, 'test')",
            order=order,
            line=line,
        )
        await conn.execute(
            text(
                "INSERT INTO packed_line_allocations (packed_line_id, allocation_id, quantity)"
                " VALUES (:packed_line, :allocation, 1)"
            ),
            {"packed_line": packed_line, "allocation": allocation},
        )
    return Seed(
        item,
        other_item,
        location,
        lot,
        lot2,
        balance,
        order,
        line,
        line2,
        allocation,
        backorder,
        packed_line,
    )


async def everything(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to show that a refused write left no trace."""
    async with engine.connect() as conn:
        return {
            table.name: [
                tuple(row)
                for row in await conn.execute(text(f"SELECT * FROM {table.name} ORDER BY 1, 2"))
            ]
            for table in Base.metadata.sorted_tables
        }


async def execute(engine: AsyncEngine, *statements: str, **params: Any) -> None:
    """Run the statements in one transaction, committing if all succeed."""
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement), params)


# (SQL, SQLSTATE, the constraint that refuses it; "a|b" when either may fire first)
REFUSED: dict[str, tuple[str, str, str]] = {
    "allocated above on hand": (
        "UPDATE inventory_balances SET allocated = on_hand + 1 WHERE id = :balance",
        CHECK,
        "ck_inventory_balances_allocated_within_on_hand",
    ),
    "a new balance allocated above on hand": (
        "INSERT INTO inventory_balances (item_id, lot_id, location_id, on_hand, allocated)"
        " VALUES (:item, :lot_without_balance, :location, 2, 3)",
        CHECK,
        "ck_inventory_balances_allocated_within_on_hand",
    ),
    "on hand below allocated": (
        "UPDATE inventory_balances SET on_hand = 3 WHERE id = :balance",
        CHECK,
        "ck_inventory_balances_allocated_within_on_hand",
    ),
    "negative allocated": (
        "UPDATE inventory_balances SET allocated = -1 WHERE id = :balance",
        CHECK,
        "ck_inventory_balances_allocated_not_negative",
    ),
    "zero line quantity": (
        "INSERT INTO sales_order_lines (order_id, line_number, item_id, quantity)"
        " VALUES (:order, 3, :item, 0)",
        CHECK,
        "ck_sales_order_lines_quantity_positive",
    ),
    "negative line quantity": (
        "UPDATE sales_order_lines SET quantity = -5 WHERE id = :line_without_backorder",
        CHECK,
        # quantity_cancelled (0) is then outside 0..quantity as well: either check may fire.
        "ck_sales_order_lines_quantity_positive|ck_sales_order_lines_cancelled_within",
    ),
    "cancelled above line quantity": (
        "UPDATE sales_order_lines SET quantity_cancelled = 11 WHERE id = :line",
        CHECK,
        "ck_sales_order_lines_cancelled_within",
    ),
    "zero allocation quantity": (
        "INSERT INTO allocations (order_id, line_id, balance_id, quantity, actor)"
        " VALUES (:order, :line_without_backorder, :balance, 0, 'test')",
        CHECK,
        "ck_allocations_quantity_positive",
    ),
    "negative allocation quantity": (
        "INSERT INTO allocations (order_id, line_id, balance_id, quantity, actor)"
        " VALUES (:order, :line_without_backorder, :balance, -2, 'test')",
        CHECK,
        "ck_allocations_quantity_positive|ck_allocations_packed_within",
    ),
    "packed above allocation quantity": (
        "UPDATE allocations SET quantity_packed = quantity + 1 WHERE id = :allocation",
        CHECK,
        "ck_allocations_packed_within",
    ),
    "negative packed quantity": (
        "UPDATE allocations SET quantity_packed = -1 WHERE id = :allocation",
        CHECK,
        "ck_allocations_packed_within",
    ),
    "zero backorder quantity": (
        "INSERT INTO backorders (order_id, line_id, quantity)"
        " VALUES (:order, :line_without_backorder, 0)",
        CHECK,
        "ck_backorders_quantity_positive",
    ),
    "backorder allocated above its quantity": (
        "UPDATE backorders SET quantity_allocated = 7 WHERE id = :backorder",
        CHECK,
        "ck_backorders_allocated_within",
    ),
    "zero packed line quantity": (
        "INSERT INTO packed_lines (order_id, line_id, quantity, actor)"
        " VALUES (:order, :line, 0, 'test')",
        CHECK,
        "ck_packed_lines_quantity_positive",
    ),
    "zero packed allocation quantity": (
        "UPDATE packed_line_allocations SET quantity = 0 WHERE packed_line_id = :packed_line",
        CHECK,
        "ck_packed_line_allocations_quantity_positive",
    ),
    "zero adjustment": (
        "INSERT INTO inventory_adjustments (balance_id, quantity, actor)"
        " VALUES (:balance, 0, 'test')",
        CHECK,
        "ck_inventory_adjustments_quantity_not_zero",
    ),
    "unknown order status": (
        "UPDATE sales_orders SET status = 'SHIPPED' WHERE id = :order",
        CHECK,
        "ck_sales_orders_status_known",
    ),
    "unknown backorder status": (
        "UPDATE backorders SET status = 'open' WHERE id = :backorder",
        CHECK,
        "ck_backorders_status_known",
    ),
    "duplicate sku": (
        "INSERT INTO items (sku, name) VALUES ('WIDGET', 'Another widget')",
        UNIQUE,
        "uq_items_sku",
    ),
    "duplicate location code": (
        "INSERT INTO locations (code, name) VALUES ('BIN-1', 'Another bin')",
        UNIQUE,
        "uq_locations_code",
    ),
    "duplicate lot number for the item": (
        "INSERT INTO lots (item_id, lot_number) VALUES (:item, 'L1')",
        UNIQUE,
        "uq_lots_item_id_lot_number",
    ),
    "a second balance for a lot at a location": (
        "INSERT INTO inventory_balances (item_id, lot_id, location_id, on_hand)"
        " VALUES (:item, :lot, :location, 5)",
        UNIQUE,
        "uq_inventory_balances_lot_id_location_id",
    ),
    "duplicate order number": (
        "INSERT INTO sales_orders (number, customer, actor, updated_by)"
        " VALUES ('SO-1', 'Someone else', 'test', 'test')",
        UNIQUE,
        "uq_sales_orders_number",
    ),
    "duplicate line number": (
        "INSERT INTO sales_order_lines (order_id, line_number, item_id, quantity)"
        " VALUES (:order, 1, :item, 1)",
        UNIQUE,
        "uq_sales_order_lines_order_id_line_number",
    ),
    "a second OPEN backorder for a line": (
        "INSERT INTO backorders (order_id, line_id, quantity) VALUES (:order, :line, 2)",
        UNIQUE,
        "uq_backorders_one_open_per_line",
    ),
}


@pytest.mark.parametrize(("statement", "code", "constraint"), REFUSED.values(), ids=REFUSED)
async def test_the_database_refuses_a_row_that_breaks_an_invariant(
    engine: AsyncEngine, statement: str, code: str, constraint: str
) -> None:
    rows = await seed(engine)
    before = await everything(engine)

    with pytest.raises(IntegrityError) as caught:
        await execute(engine, statement, **rows.params())

    assert sqlstate(caught.value) == code
    message = str(caught.value.orig)
    assert any(f'"{name}"' in message for name in constraint.split("|")), message
    assert await everything(engine) == before


async def test_a_refused_statement_rolls_back_the_writes_before_it_in_its_transaction(
    engine: AsyncEngine,
) -> None:
    rows = await seed(engine)
    before = await everything(engine)

    with pytest.raises(IntegrityError) as caught:
        await execute(
            engine,
            # Allocate the 6 still available, then over-allocate: all or nothing.
            "INSERT INTO allocations (order_id, line_id, balance_id, quantity, actor)"
            " VALUES (:order, :line, :balance, 6, 'test')",
            "UPDATE inventory_balances SET allocated = allocated + 6 WHERE id = :balance",
            "UPDATE inventory_balances SET allocated = allocated + 1 WHERE id = :balance",
            **rows.params(),
        )

    assert sqlstate(caught.value) == CHECK
    assert await everything(engine) == before


async def test_the_same_lot_number_is_allowed_for_another_item(engine: AsyncEngine) -> None:
    rows = await seed(engine)

    await execute(
        engine,
        "INSERT INTO lots (item_id, lot_number) VALUES (:other_item, 'L1')",
        **rows.params(),
    )

    async with engine.connect() as conn:
        found = (
            await conn.execute(text("SELECT item_id FROM lots WHERE lot_number = 'L1' ORDER BY 1"))
        ).all()
    assert sorted(row.item_id for row in found) == sorted([rows.item, rows.other_item])


async def test_a_line_may_keep_closed_backorders_beside_its_one_open_backorder(
    engine: AsyncEngine,
) -> None:
    rows = await seed(engine)

    await execute(
        engine,
        "INSERT INTO backorders (order_id, line_id, quantity, status)"
        " VALUES (:order, :line, 2, 'CANCELLED'), (:order, :line, 3, 'ALLOCATED')",
        **rows.params(),
    )

    async with engine.connect() as conn:
        statuses = (
            await conn.execute(
                text("SELECT status FROM backorders WHERE line_id = :line ORDER BY id"),
                {"line": rows.line},
            )
        ).all()
    assert [row.status for row in statuses] == ["OPEN", "CANCELLED", "ALLOCATED"]


async def test_reopening_a_closed_backorder_beside_an_open_one_is_refused(
    engine: AsyncEngine,
) -> None:
    rows = await seed(engine)
    await execute(
        engine,
        "INSERT INTO backorders (order_id, line_id, quantity, status)"
        " VALUES (:order, :line, 2, 'CANCELLED')",
        **rows.params(),
    )
    before = await everything(engine)

    with pytest.raises(IntegrityError) as caught:
        await execute(
            engine,
            "UPDATE backorders SET status = 'OPEN' WHERE line_id = :line AND status = 'CANCELLED'",
            **rows.params(),
        )

    assert sqlstate(caught.value) == UNIQUE
    assert "uq_backorders_one_open_per_line" in str(caught.value.orig)
    assert await everything(engine) == before
