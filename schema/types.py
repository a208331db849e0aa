"""The object types. Nested fields go through the request's DataLoaders."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, ClassVar, Self, TypeVar

import strawberry
from sqlalchemy import RowMapping
from strawberry import Private

from resolvers.context import Context
from resolvers.ids import to_global_id
from schema.enums import BackorderStatus, OrderStatus

Info = strawberry.Info[Context, None]


@strawberry.interface(description="An object with a Relay global id.")
class Node:
    id: strawberry.ID


class FromRow:
    """Build a type from a row: `id` becomes the global id, `pk` the row's id,
    and every other field takes the column of its name."""

    kind: ClassVar[str]

    @classmethod
    def from_row(cls, row: RowMapping) -> Self:
        values: dict[str, Any] = {"id": strawberry.ID(to_global_id(cls.kind, row["id"]))}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]  # resolvers are init=False
            if f.init and f.name not in values:
                values[f.name] = row["id"] if f.name == "pk" else row[f.name]
        return cls(**values)

    @classmethod
    def many(cls, rows: Any) -> list[Self]:
        return [cls.from_row(row) for row in rows]


T = TypeVar("T", bound=FromRow)


async def _one(cls: type[T], info: Info, pk: int) -> T:
    row = await info.context.loaders.one(cls.kind, pk)
    assert row is not None, f"{cls.kind} {pk} vanished"  # foreign keys guarantee it
    return cls.from_row(row)


@strawberry.type
class Item(Node, FromRow):
    kind: ClassVar[str] = "Item"
    pk: Private[int]
    sku: str
    name: str
    serialized: bool
    unit: str

    async def _total(self, info: Info, column: str) -> int:
        rows = await info.context.loaders.item_totals().load(self.pk)
        return int(rows[0][column]) if rows else 0

    @strawberry.field(description="Summed over the item's balances.")
    async def on_hand(self, info: Info) -> int:
        return await self._total(info, "on_hand")

    @strawberry.field
    async def allocated(self, info: Info) -> int:
        return await self._total(info, "allocated")

    @strawberry.field
    async def available(self, info: Info) -> int:
        return await self._total(info, "on_hand") - await self._total(info, "allocated")

    @strawberry.field
    async def balances(self, info: Info) -> list[InventoryBalance]:
        return InventoryBalance.many(
            await info.context.loaders.many("InventoryBalance", "item_id", self.pk)
        )


@strawberry.type
class Location(Node, FromRow):
    kind: ClassVar[str] = "Location"
    pk: Private[int]
    code: str
    name: str
    pick_sequence: int = strawberry.field(description="Lower is picked first.")


@strawberry.type
class Lot(Node, FromRow):
    kind: ClassVar[str] = "Lot"
    pk: Private[int]
    item_id: Private[int]
    lot_number: str
    received_at: datetime
    expires_at: datetime | None

    @strawberry.field
    async def item(self, info: Info) -> Item:
        return await _one(Item, info, self.item_id)


@strawberry.type
class InventoryBalance(Node, FromRow):
    kind: ClassVar[str] = "InventoryBalance"
    pk: Private[int]
    item_id: Private[int]
    lot_id: Private[int]
    location_id: Private[int]
    on_hand: int
    allocated: int
    version: int

    @strawberry.field
    def available(self) -> int:
        return self.on_hand - self.allocated

    @strawberry.field
    async def item(self, info: Info) -> Item:
        return await _one(Item, info, self.item_id)

    @strawberry.field
    async def lot(self, info: Info) -> Lot:
        return await _one(Lot, info, self.lot_id)

    @strawberry.field
    async def location(self, info: Info) -> Location:
        return await _one(Location, info, self.location_id)


@strawberry.type
class InventoryAdjustment(Node, FromRow):
    kind: ClassVar[str] = "InventoryAdjustment"
    pk: Private[int]
    balance_id: Private[int]
    quantity: int = strawberry.field(description="Signed: negative writes stock off.")
    reason: str
    created_at: datetime

    async def _balance(self, info: Info) -> InventoryBalance:
        return await _one(InventoryBalance, info, self.balance_id)

    @strawberry.field
    async def balance(self, info: Info) -> InventoryBalance:
        return await self._balance(info)

    @strawberry.field
    async def item(self, info: Info) -> Item:
        return await _one(Item, info, (await self._balance(info)).item_id)

    @strawberry.field
    async def lot(self, info: Info) -> Lot:
        return await _one(Lot, info, (await self._balance(info)).lot_id)

    @strawberry.field
    async def location(self, info: Info) -> Location:
        return await _one(Location, info, (await self._balance(info)).location_id)


@strawberry.type(
    description="An allocation line: stock of one lot at one location "
    "reserved for a sales-order line."
)
class Allocation(Node, FromRow):
    kind: ClassVar[str] = "Allocation"
    pk: Private[int]
    line_id: Private[int]
    lot_id: Private[int]
    location_id: Private[int]
    balance_id: Private[int]
    quantity: int
    quantity_packed: int
    created_at: datetime

    @strawberry.field(description="e.g. AL-000017")
    def name(self) -> str:
        return f"AL-{self.pk:06d}"

    @strawberry.field
    async def sales_order_line(self, info: Info) -> SalesOrderLine:
        return await _one(SalesOrderLine, info, self.line_id)

    @strawberry.field
    async def lot(self, info: Info) -> Lot:
        return await _one(Lot, info, self.lot_id)

    @strawberry.field
    async def location(self, info: Info) -> Location:
        return await _one(Location, info, self.location_id)

    @strawberry.field
    async def balance(self, info: Info) -> InventoryBalance:
        return await _one(InventoryBalance, info, self.balance_id)


@strawberry.type
class Backorder(Node, FromRow):
    kind: ClassVar[str] = "Backorder"
    pk: Private[int]
    order_id: Private[int]
    line_id: Private[int]
    quantity: int
    quantity_allocated: int
    status: BackorderStatus
    cancel_reason: str | None
    created_at: datetime
    updated_at: datetime

    @strawberry.field(description="e.g. BO-000003")
    def name(self) -> str:
        return f"BO-{self.pk:06d}"

    @strawberry.field(description="quantity - quantityAllocated: still waiting for stock.")
    def quantity_remaining(self) -> int:
        return self.quantity - self.quantity_allocated

    @strawberry.field
    async def sales_order_line(self, info: Info) -> SalesOrderLine:
        return await _one(SalesOrderLine, info, self.line_id)

    @strawberry.field
    async def sales_order(self, info: Info) -> SalesOrder:
        return await _one(SalesOrder, info, self.order_id)


@strawberry.type(description="A packed sales-order line: quantity packed for shipping.")
class PackedLine(Node, FromRow):
    kind: ClassVar[str] = "PackedLine"
    pk: Private[int]
    line_id: Private[int]
    quantity: int
    packed_at: datetime

    @strawberry.field
    async def sales_order_line(self, info: Info) -> SalesOrderLine:
        return await _one(SalesOrderLine, info, self.line_id)

    @strawberry.field(description="The allocation lines this packed.")
    async def allocations(self, info: Info) -> list[Allocation]:
        return Allocation.many(
            await info.context.loaders.allocations_of_packed_lines().load(self.pk)
        )


@strawberry.type
class SalesOrderLine(Node, FromRow):
    kind: ClassVar[str] = "SalesOrderLine"
    pk: Private[int]
    order_id: Private[int]
    item_id: Private[int]
    line_number: int
    quantity: int
    quantity_cancelled: int

    async def _allocations(self, info: Info) -> list[Allocation]:
        return Allocation.many(await info.context.loaders.many("Allocation", "line_id", self.pk))

    @strawberry.field
    async def item(self, info: Info) -> Item:
        return await _one(Item, info, self.item_id)

    @strawberry.field
    async def sales_order(self, info: Info) -> SalesOrder:
        return await _one(SalesOrder, info, self.order_id)

    @strawberry.field(description="All allocation lines, packed or not.")
    async def quantity_allocated(self, info: Info) -> int:
        return sum(a.quantity for a in await self._allocations(info))

    @strawberry.field
    async def quantity_packed(self, info: Info) -> int:
        return sum(a.quantity_packed for a in await self._allocations(info))

    @strawberry.field(description="What the open backorder still waits for.")
    async def quantity_backordered(self, info: Info) -> int:
        return sum(
            b.quantity - b.quantity_allocated
            for b in await self._backorders(info)
            if b.status == BackorderStatus.OPEN  # rows carry the plain str; StrEnum equals it
        )

    @strawberry.field
    async def allocations(self, info: Info) -> list[Allocation]:
        return await self._allocations(info)

    async def _backorders(self, info: Info) -> list[Backorder]:
        return Backorder.many(await info.context.loaders.many("Backorder", "line_id", self.pk))

    @strawberry.field
    async def backorders(self, info: Info) -> list[Backorder]:
        return await self._backorders(info)

    @strawberry.field
    async def packed_lines(self, info: Info) -> list[PackedLine]:
        return PackedLine.many(await info.context.loaders.many("PackedLine", "line_id", self.pk))


@strawberry.type
class SalesOrder(Node, FromRow):
    kind: ClassVar[str] = "SalesOrder"
    pk: Private[int]
    number: str
    customer: str
    status: OrderStatus
    version: int = strawberry.field(description="Pass as expectedVersion to guard a change.")
    created_at: datetime
    updated_at: datetime

    async def load_lines(self, info: Info) -> list[SalesOrderLine]:
        """The lines in line-number order."""
        rows = await info.context.loaders.many("SalesOrderLine", "order_id", self.pk)
        return SalesOrderLine.many(sorted(rows, key=lambda row: row["line_number"]))

    @strawberry.field
    async def lines(self, info: Info) -> list[SalesOrderLine]:
        return await self.load_lines(info)

    @strawberry.field
    async def allocations(self, info: Info) -> list[Allocation]:
        return Allocation.many(await info.context.loaders.many("Allocation", "order_id", self.pk))

    @strawberry.field
    async def backorders(self, info: Info) -> list[Backorder]:
        return Backorder.many(await info.context.loaders.many("Backorder", "order_id", self.pk))

    @strawberry.field
    async def packed_lines(self, info: Info) -> list[PackedLine]:
        return PackedLine.many(await info.context.loaders.many("PackedLine", "order_id", self.pk))


NODE_TYPES: dict[str, type[FromRow]] = {
    cls.kind: cls
    for cls in (
        Item,
        Location,
        Lot,
        InventoryBalance,
        InventoryAdjustment,
        Allocation,
        Backorder,
        PackedLine,
        SalesOrderLine,
        SalesOrder,
    )
}
