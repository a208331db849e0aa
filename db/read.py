"""Read-side queries for the API: batched fetches for DataLoaders and keyset pages.

Each call takes its own pooled connection, so concurrently resolved fields
never share one. It reads in autocommit: a lone SELECT (or a page's two, each with
its own snapshot under READ COMMITTED anyway) needs no BEGIN and ROLLBACK, which
saves two round trips per call (docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, Select, exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.expression import Executable

from db import tables as t
from db.errors import reporting_lost_connections

_balance = t.InventoryBalance
_link = t.PackedLineAllocation

# The table behind each kind of object the API shows, by its GraphQL type name.
_TABLES = {
    kind: t.table_of(model)
    for kind, model in {
        "SalesOrder": t.SalesOrder, "SalesOrderLine": t.SalesOrderLine,
        "Allocation": t.Allocation, "Backorder": t.Backorder, "PackedLine": t.PackedLine,
        "Item": t.Item, "Lot": t.Lot, "Location": t.Location,
        "InventoryBalance": t.InventoryBalance, "InventoryAdjustment": t.InventoryAdjustment,
    }.items()
}  # fmt: skip
# What one row of each kind is made of: its table, and for allocation lines the
# lot and location of their balance.
ENTITIES: dict[str, Select[Any]] = {kind: select(table) for kind, table in _TABLES.items()}
ENTITIES["Allocation"] = (
    select(_TABLES["Allocation"], _balance.lot_id, _balance.location_id)
    .join(_balance, _balance.id == t.Allocation.balance_id)
)  # fmt: skip


@dataclass(frozen=True)
class PageWindow:
    """Which rows a connection asks for: `size` after `after`, or (backwards) before `before`."""

    size: int
    after: int | None = None
    before: int | None = None
    backwards: bool = False


@dataclass(frozen=True)
class Page:
    rows: list[RowMapping]
    total: int
    more: bool  # rows beyond the page in the direction read


class Reader:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @contextlib.asynccontextmanager
    async def _connect(self) -> AsyncIterator[AsyncConnection]:
        async with reporting_lost_connections(), self.engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    async def rows(self, stmt: Executable) -> list[RowMapping]:
        async with self._connect() as conn:
            return list((await conn.execute(stmt)).mappings())

    async def where_in(self, kind: str, column: str, keys: Collection[object]) -> list[RowMapping]:
        """Rows of one kind whose column is one of keys, in id order."""
        table = _TABLES[kind]
        return await self.rows(ENTITIES[kind].where(table.c[column].in_(keys)).order_by(table.c.id))

    async def allocations_of_packed_lines(self, ids: Collection[int]) -> list[RowMapping]:
        return await self.rows(
            ENTITIES["Allocation"]
            .add_columns(_link.packed_line_id)
            .join(_link, _link.allocation_id == t.Allocation.id)
            .where(_link.packed_line_id.in_(ids))
            .order_by(t.Allocation.id)
        )

    async def item_totals(self, item_ids: Collection[int]) -> list[RowMapping]:
        return await self.rows(
            select(
                _balance.item_id,
                func.sum(_balance.on_hand).label("on_hand"),
                func.sum(_balance.allocated).label("allocated"),
            )
            .where(_balance.item_id.in_(item_ids))
            .group_by(_balance.item_id)
        )

    async def page(
        self, kind: str, filters: Sequence[ColumnElement[bool]], window: PageWindow
    ) -> Page:
        """One page in id order (keyset: stable under inserts) and the total count."""
        table = _TABLES[kind]
        stmt = ENTITIES[kind].where(*filters)
        if window.after is not None:
            stmt = stmt.where(table.c.id > window.after)
        if window.before is not None:
            stmt = stmt.where(table.c.id < window.before)
        # Going backwards reads the ids just before `before`, newest first, then turns
        # them around; one row more than asked tells whether there is more.
        order = table.c.id.desc() if window.backwards else table.c.id
        async with self._connect() as conn:
            rows = list(
                (await conn.execute(stmt.order_by(order).limit(window.size + 1))).mappings()
            )
            total = await conn.scalar(select(func.count()).select_from(table).where(*filters))
        more = len(rows) > window.size
        rows = rows[: window.size]
        if window.backwards:
            rows.reverse()
        return Page(rows, total or 0, more)


@dataclass(frozen=True)
class OrderFilter:
    status: str | None = None
    customer: str | None = None
    sku: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        order = t.SalesOrder
        clauses: list[ColumnElement[bool]] = []
        if self.status:
            clauses.append(order.status == self.status)
        if self.customer:
            clauses.append(order.customer == self.customer)
        if self.created_after:
            clauses.append(order.created_at >= self.created_after)
        if self.created_before:
            clauses.append(order.created_at < self.created_before)
        if self.sku:
            line, item = t.SalesOrderLine, t.Item
            clauses.append(
                exists(
                    select(line.id)
                    .join(item, item.id == line.item_id)
                    .where(line.order_id == order.id, item.sku == self.sku)
                )
            )
        return clauses


def backorder_filter(status: str | None) -> list[ColumnElement[bool]]:
    return [t.Backorder.status == status] if status else []


def inventory_filter(
    sku: str | None, location_code: str | None, in_stock_only: bool
) -> list[ColumnElement[bool]]:
    balance = t.InventoryBalance
    clauses: list[ColumnElement[bool]] = []
    if sku is not None:
        clauses.append(balance.item_id.in_(select(t.Item.id).where(t.Item.sku == sku)))
    if location_code is not None:
        clauses.append(
            balance.location_id.in_(select(t.Location.id).where(t.Location.code == location_code))
        )
    if in_stock_only:
        clauses.append(balance.on_hand > 0)
    return clauses
