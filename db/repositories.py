"""The unit of work and repositories that implement services.ports on PostgreSQL.

SQLAlchemy Core on one AsyncConnection per unit of work: the use cases load
small aggregates explicitly, so the ORM's identity map would only add cost.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Table, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db import tables as t
from db.errors import (
    RACE_SQLSTATES,
    connection_lost,
    reporting_lost_connections,
    sqlstate,
    unavailable,
)
from services.domain.errors import DomainError, ErrorCode, Subject
from services.domain.order import (
    AllocationLine,
    Backorder,
    BackorderStatus,
    Change,
    Deleted,
    Inserted,
    OrderLine,
    PackedLine,
    SalesOrder,
    Updated,
)
from services.domain.planner import StockCandidate
from services.ports import BalanceRecord, ConcurrentChange, ItemRecord

log = logging.getLogger(__name__)


class SqlCatalog:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def add_item(self, sku: str, name: str, serialized: bool, unit: str) -> int:
        stmt = (
            pg_insert(t.Item)
            .values(sku=sku, name=name, serialized=serialized, unit=unit)
            .on_conflict_do_nothing(index_elements=["sku"])
            .returning(t.Item.id)
        )
        item_id = await self.conn.scalar(stmt)
        if item_id is None:
            raise DomainError(
                ErrorCode.DUPLICATE, f"An item with sku {sku!r} exists.", Subject.ITEM
            )
        return item_id

    async def item_by_sku(self, sku: str) -> ItemRecord | None:
        row = (
            await self.conn.execute(
                select(t.Item.id, t.Item.sku, t.Item.serialized).where(t.Item.sku == sku)
            )
        ).first()
        return ItemRecord(row.id, row.sku, row.serialized) if row else None

    async def add_location(self, code: str, name: str, pick_sequence: int) -> int:
        stmt = (
            pg_insert(t.Location)
            .values(code=code, name=name, pick_sequence=pick_sequence)
            .on_conflict_do_nothing(index_elements=["code"])
            .returning(t.Location.id)
        )
        location_id = await self.conn.scalar(stmt)
        if location_id is None:
            raise DomainError(
                ErrorCode.DUPLICATE, f"A location with code {code!r} exists.", Subject.LOCATION
            )
        return location_id

    async def location_id(self, code: str) -> int | None:
        return await self.conn.scalar(select(t.Location.id).where(t.Location.code == code))


# One statement per batch of balance changes. Rows are locked in id order first,
# so two transactions touching the same balances never deadlock; the guard is
# re-checked on the newest row version after any wait (READ COMMITTED).
_BALANCE_CHANGE = """
WITH wanted AS (
    SELECT unnest(CAST(:ids AS bigint[])) AS id, unnest(CAST(:quantities AS int[])) AS qty
), locked AS (
    SELECT b.id FROM inventory_balances b JOIN wanted w ON w.id = b.id
    ORDER BY b.id FOR NO KEY UPDATE OF b
)
UPDATE inventory_balances b SET {assignments}, version = b.version + 1
FROM wanted w
WHERE b.id = w.id AND b.id IN (SELECT id FROM locked) AND {guard}
RETURNING b.id
"""


class SqlStock:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def candidates(self, item_ids: Collection[int]) -> list[StockCandidate]:
        if not item_ids:
            return []
        b, lot, loc = t.InventoryBalance, t.Lot, t.Location
        rows = await self.conn.execute(
            select(
                b.id,
                b.item_id,
                b.lot_id,
                b.location_id,
                (b.on_hand - b.allocated).label("available"),
                lot.received_at,
                lot.expires_at,
                loc.pick_sequence,
            )
            .join(lot, lot.id == b.lot_id)
            .join(loc, loc.id == b.location_id)
            .where(b.item_id.in_(item_ids), b.on_hand > b.allocated)
        )
        return [
            StockCandidate(
                r.id,
                r.item_id,
                r.lot_id,
                r.location_id,
                r.available,
                r.received_at,
                r.expires_at,
                r.pick_sequence,
            )
            for r in rows
        ]

    async def lot_id(
        self,
        item_id: int,
        lot_number: str,
        received_at: datetime | None,
        expires_at: datetime | None,
    ) -> int:
        values: dict[str, Any] = {
            "item_id": item_id,
            "lot_number": lot_number,
            "expires_at": expires_at,
        }
        if received_at is not None:
            values["received_at"] = received_at
        created = await self.conn.scalar(
            pg_insert(t.Lot)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["item_id", "lot_number"])
            .returning(t.Lot.id)
        )
        if created is not None:
            return int(created)
        existing = await self.conn.scalar(
            select(t.Lot.id).where(t.Lot.item_id == item_id, t.Lot.lot_number == lot_number)
        )
        assert existing is not None
        return existing

    async def adjust(
        self, item_id: int, lot_id: int, location_id: int, delta: int
    ) -> BalanceRecord | None:
        b = t.InventoryBalance
        await self.conn.execute(
            pg_insert(b)
            .values(item_id=item_id, lot_id=lot_id, location_id=location_id)
            .on_conflict_do_nothing(index_elements=["lot_id", "location_id"])
        )
        row = (
            await self.conn.execute(
                update(b)
                .where(
                    b.lot_id == lot_id,
                    b.location_id == location_id,
                    b.on_hand + delta >= b.allocated,
                )
                .values(on_hand=b.on_hand + delta, version=b.version + 1)
                .returning(b.id, b.on_hand, b.allocated, b.version)
            )
        ).first()
        return BalanceRecord(row.id, row.on_hand, row.allocated, row.version) if row else None

    async def record_adjustment(self, balance_id: int, quantity: int, reason: str) -> int:
        adjustment_id = await self.conn.scalar(
            insert(t.InventoryAdjustment)
            .values(balance_id=balance_id, quantity=quantity, reason=reason)
            .returning(t.InventoryAdjustment.id)
        )
        assert adjustment_id is not None
        return int(adjustment_id)

    async def _change(self, quantities: Mapping[int, int], assignments: str, guard: str) -> None:
        if not quantities:
            return
        ids = sorted(quantities)
        stmt = text(_BALANCE_CHANGE.format(assignments=assignments, guard=guard))
        changed = (
            await self.conn.execute(stmt, {"ids": ids, "quantities": [quantities[i] for i in ids]})
        ).all()
        if len(changed) != len(ids):
            raise ConcurrentChange(f"{len(ids) - len(changed)} balance(s) changed under us")

    async def reserve(self, quantities: Mapping[int, int]) -> None:
        await self._change(
            quantities, "allocated = b.allocated + w.qty", "b.on_hand - b.allocated >= w.qty"
        )

    async def release(self, quantities: Mapping[int, int]) -> None:
        await self._change(quantities, "allocated = b.allocated - w.qty", "b.allocated >= w.qty")

    async def ship(self, quantities: Mapping[int, int]) -> None:
        await self._change(
            quantities,
            "on_hand = b.on_hand - w.qty, allocated = b.allocated - w.qty",
            "b.allocated >= w.qty",
        )


class SqlOrders:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def create(self, customer: str, number: str | None) -> SalesOrder:
        order_id = await self.conn.scalar(
            pg_insert(t.SalesOrder)
            # Version 0: saving the new order with its lines makes it version 1.
            .values(customer=customer, number=number or await self._free_number(), version=0)
            .on_conflict_do_nothing(index_elements=["number"])
            .returning(t.SalesOrder.id)
        )
        if order_id is None:
            raise DomainError(
                ErrorCode.DUPLICATE, f"Sales order {number!r} exists.", Subject.ORDER_NUMBER
            )
        return SalesOrder(order_id, 0, [], [], [])

    async def _free_number(self) -> str:
        """The next SO-nnnnnn that no client has taken for an order of its own."""
        while True:
            seq = await self.conn.scalar(select(t.ORDER_NUMBER_SEQUENCE.next_value()))
            number = f"SO-{seq:06d}"
            if not await self.number_taken(number):
                return number

    async def get(self, order_id: int) -> SalesOrder | None:
        version = await self.current_version(order_id)
        if version is None:
            return None
        ln, item, a, b, bo = (
            t.SalesOrderLine,
            t.Item,
            t.Allocation,
            t.InventoryBalance,
            t.Backorder,
        )
        lines = await self.conn.execute(
            select(
                ln.id,
                ln.line_number,
                ln.item_id,
                item.serialized,
                ln.quantity,
                ln.quantity_cancelled,
            )
            .join(item, item.id == ln.item_id)
            .where(ln.order_id == order_id)
            .order_by(ln.line_number)
        )
        allocations = await self.conn.execute(
            select(
                a.id,
                a.line_id,
                a.balance_id,
                b.lot_id,
                b.location_id,
                a.quantity,
                a.quantity_packed,
            )
            .join(b, b.id == a.balance_id)
            .where(a.order_id == order_id)
            .order_by(a.id)
        )
        backorders = await self.conn.execute(
            select(
                bo.id, bo.line_id, bo.quantity, bo.quantity_allocated, bo.status, bo.cancel_reason
            )
            .where(bo.order_id == order_id)
            .order_by(bo.id)
        )
        return SalesOrder(
            order_id,
            version,
            [OrderLine(*row) for row in lines],
            [AllocationLine(*row) for row in allocations],
            [
                Backorder(
                    r.id,
                    r.line_id,
                    r.quantity,
                    r.quantity_allocated,
                    BackorderStatus(r.status),
                    r.cancel_reason,
                )
                for r in backorders
            ],
        )

    async def current_version(self, order_id: int) -> int | None:
        return await self.conn.scalar(
            select(t.SalesOrder.version).where(t.SalesOrder.id == order_id)
        )

    async def number_taken(self, number: str) -> bool:
        found = await self.conn.scalar(select(t.SalesOrder.id).where(t.SalesOrder.number == number))
        return found is not None

    async def order_of_line(self, line_id: int) -> int | None:
        return await self.conn.scalar(
            select(t.SalesOrderLine.order_id).where(t.SalesOrderLine.id == line_id)
        )

    async def order_of_backorder(self, backorder_id: int) -> int | None:
        return await self.conn.scalar(
            select(t.Backorder.order_id).where(t.Backorder.id == backorder_id)
        )

    async def orders_of_allocations(self, allocation_ids: Collection[int]) -> dict[int, int]:
        rows = await self.conn.execute(
            select(t.Allocation.id, t.Allocation.order_id).where(
                t.Allocation.id.in_(allocation_ids)
            )
        )
        return {row.id: row.order_id for row in rows}

    async def save(self, order: SalesOrder) -> None:
        # Claim the order first: a concurrent change to it waits here, then fails
        # the version check, before it has written anything.
        claimed = await self.conn.scalar(
            update(t.SalesOrder)
            .where(t.SalesOrder.id == order.id, t.SalesOrder.version == order.version)
            .values(
                version=t.SalesOrder.version + 1, status=order.status().value, updated_at=func.now()
            )
            .returning(t.SalesOrder.version)
        )
        if claimed is None:
            raise ConcurrentChange(f"sales order {order.id} changed under us")
        order.version = claimed
        for change in order.changes:
            await self._write(order.id, change)
        order.changes.clear()

    async def _write(self, order_id: int, change: Change) -> None:
        obj = change.obj
        match change, obj:
            case Inserted(), OrderLine():
                obj.id = await self._insert(
                    t.SalesOrderLine,
                    order_id=order_id,
                    line_number=obj.line_number,
                    item_id=obj.item_id,
                    quantity=obj.quantity,
                )
            case Updated(), OrderLine():
                await self._update(
                    t.SalesOrderLine,
                    obj.id,
                    quantity=obj.quantity,
                    quantity_cancelled=obj.quantity_cancelled,
                )
            case Inserted(), AllocationLine():
                obj.id = await self._insert(
                    t.Allocation,
                    order_id=order_id,
                    line_id=obj.line_id,
                    balance_id=obj.balance_id,
                    quantity=obj.quantity,
                )
            case Updated(), AllocationLine():
                await self._update(t.Allocation, obj.id, quantity_packed=obj.quantity_packed)
            case Inserted(), Backorder():
                obj.id = await self._insert(
                    t.Backorder, order_id=order_id, line_id=obj.line_id, quantity=obj.quantity
                )
            case Updated(), Backorder():
                await self._update(
                    t.Backorder,
                    obj.id,
                    quantity=obj.quantity,
                    quantity_allocated=obj.quantity_allocated,
                    status=obj.status.value,
                    cancel_reason=obj.cancel_reason,
                    updated_at=func.now(),
                )
            case Inserted(), PackedLine():
                obj.id = await self._insert(
                    t.PackedLine, order_id=order_id, line_id=obj.line_id, quantity=obj.quantity
                )
                await self.conn.execute(
                    insert(t.PackedLineAllocation),
                    [
                        {"packed_line_id": obj.id, "allocation_id": a.id, "quantity": a.quantity}
                        for a in obj.allocations
                    ],
                )
            case Deleted(), OrderLine() | AllocationLine() | Backorder():
                table = _TABLE_OF[type(obj)]
                await self.conn.execute(delete(table).where(table.c.id == obj.id))
            case _:  # pragma: no cover - a new kind of change needs a case here
                raise TypeError(f"cannot write {change!r}")

    async def _insert(self, model: type[t.Base], **values: Any) -> int:
        table = t.table_of(model)
        new_id = await self.conn.scalar(insert(table).values(**values).returning(table.c.id))
        assert new_id is not None
        return int(new_id)

    async def _update(self, model: type[t.Base], row_id: int | None, **values: Any) -> None:
        table = t.table_of(model)
        await self.conn.execute(update(table).where(table.c.id == row_id).values(**values))


_TABLE_OF: dict[type, Table] = {
    OrderLine: t.table_of(t.SalesOrderLine),
    AllocationLine: t.table_of(t.Allocation),
    Backorder: t.table_of(t.Backorder),
}


class SqlUnitOfWork:
    """One connection and one transaction; rolls back unless commit() was called."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def __aenter__(self) -> Self:
        async with reporting_lost_connections():
            self.conn = await self.engine.connect()
            await self.conn.begin()
        self.catalog = SqlCatalog(self.conn)
        self.stock = SqlStock(self.conn)
        self.orders = SqlOrders(self.conn)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.conn.in_transaction():
                await self.conn.rollback()
        except Exception:
            # Nothing uncommitted survives a broken connection, so a failed rollback
            # cannot leave writes behind: discard the connection and report what
            # the unit of work itself ended with (or its result).
            log.warning("rollback failed; discarding the connection", exc_info=True)
            await self.conn.invalidate()
        finally:
            await self.conn.close()
        if isinstance(exc, DBAPIError) and sqlstate(exc) in RACE_SQLSTATES:
            raise ConcurrentChange(str(sqlstate(exc))) from exc
        if exc is not None and connection_lost(exc):
            raise unavailable() from exc

    async def commit(self) -> None:
        await self.conn.commit()
