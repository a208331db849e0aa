"""The repository lists an item's open backorders in the fill order that
services/domain/fill.py defines, ties included, and its limit keeps the first."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services import orders
from services.domain.fill import Waiting, fill_order
from services.ports import UnitOfWorkFactory
from tests.service import helpers


async def test_the_open_backorders_come_in_the_domain_fill_order(
    uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 0)
    for priority, lines in ((0, 1), (5, 1), (5, 2), (-2, 1), (5, 1), (0, 2)):
        order_id = await orders.create_sales_order(
            uow, "C", None, [orders.LineInput("WIDGET", 2)] * lines, priority
        )
        await orders.allocate_order(uow, order_id)  # nothing in stock: all backordered
    async with engine.begin() as conn:
        # Ties of priority and creation time, so that the ids decide.
        await conn.execute(text("UPDATE sales_orders SET created_at = '2026-01-01T00:00Z'"
                                " WHERE id % 2 = 0"))  # fmt: skip
        await conn.execute(text("UPDATE backorders SET status = 'CANCELLED'"
                                " WHERE id = (SELECT max(id) FROM backorders)"))  # fmt: skip
    async with uow() as unit:
        item = await unit.catalog.item_by_sku("WIDGET")
        assert item is not None
        every = await unit.orders.open_backorders(item.id, 100)
        first_three = await unit.orders.open_backorders(item.id, 3)

    assert len(every) == 7  # 8 backorders, one of them cancelled
    assert all(isinstance(w, Waiting) for w in every)
    assert every == fill_order(every, 100)
    assert first_three == fill_order(every, 3)
