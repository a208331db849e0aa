"""Builds the API's objects (schema/types.py) from read records, for the fields a
request selected: each edge is fetched for all parents of a level in one call to its
loader, and every field is a plain attribute by the time GraphQL reads it.

A line's quantities allocated, packed and backordered come from the domain's own
definitions (services.domain.order), as the writes use them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

import strawberry

from db.records import (
    AdjustmentRecord,
    AllocationRecord,
    BackorderRecord,
    BalanceRecord,
    ItemRecord,
    LineRecord,
    LocationRecord,
    LotRecord,
    MovementRecord,
    OrderRecord,
    PackedLineRecord,
    PromiseRecord,
    StockAtRecord,
)
from resolvers.ids import to_global_id
from resolvers.loaders import Loader, Loaders
from resolvers.selection import Wanted
from schema.enums import BackorderStatus, ErrorCode, MovementKind, OrderStatus
from schema.types import (
    Allocation,
    AllocationPreview,
    AvailableToPromise,
    Backorder,
    InventoryAdjustment,
    InventoryBalance,
    Item,
    LinePreview,
    Location,
    Lot,
    Movement,
    Node,
    PackedLine,
    ProposedAllocation,
    SalesOrder,
    SalesOrderLine,
    StockAt,
)
from services import planning
from services.domain.order import (
    allocation_name,
    backorder_name,
    quantity_allocated,
    quantity_backordered,
    quantity_packed,
)
from services.domain.planner import Pick

Q = TypeVar("Q")
R = TypeVar("R")
T = TypeVar("T")
Build = Callable[[Sequence[R], Wanted], Awaitable[Sequence[T]]]
NodesOf = Callable[[Sequence[int], Wanted], Awaitable[dict[int, T]]]
NodesById = Callable[[Sequence[int], Wanted], Awaitable[Mapping[int, Node]]]


def global_id(kind: type[Node], pk: int) -> strawberry.ID:
    return strawberry.ID(to_global_id(kind.__name__, pk))


class Graph:
    """One request's builder; its loaders remember what it has read."""

    def __init__(self, loaders: Loaders) -> None:
        self.loaders = loaders

    # -- one level down ----------------------------------------------------------------

    async def _children(
        self,
        loader: Loader[int, Q, tuple[R, ...]],
        keys: Sequence[int],
        build: Build[R, T],
        wanted: Wanted,
    ) -> list[list[T]]:
        """For each parent key, its children built: all of them in one call to build."""
        groups = await loader.load(keys)
        built = iter(await build([row for key in keys for row in groups[key]], wanted))
        return [[next(built) for _ in groups[key]] for key in keys]

    async def _parents(
        self,
        loader: Loader[int, R, R | None],
        keys: Sequence[int],
        build: Build[R, T],
        wanted: Wanted,
    ) -> list[T]:
        """For each key (a foreign key, so it names a row), that row built; a row named
        by several children is built once and shared."""
        found = await loader.load(keys)
        distinct = list(dict.fromkeys(keys))
        rows = [found[key] for key in distinct]
        assert all(row is not None for row in rows), "a foreign key names no row"
        objects = await build([r for r in rows if r is not None], wanted)
        built = dict(zip(distinct, objects, strict=True))
        return [built[key] for key in keys]

    async def by_id(
        self,
        loader: Loader[int, R, R | None],
        ids: Sequence[int],
        build: Build[R, T],
        wanted: Wanted,
    ) -> dict[int, T]:
        """Rows by id, built; ids that name nothing are left out."""
        found = await loader.load(ids)
        pairs = [(key, row) for key, row in found.items() if row is not None]
        objects = await build([r for _, r in pairs], wanted)
        return dict(zip([key for key, _ in pairs], objects, strict=True))

    # -- sales orders ------------------------------------------------------------------

    async def orders(self, records: Sequence[OrderRecord], wanted: Wanted) -> list[SalesOrder]:
        orders = [
            SalesOrder(
                id=global_id(SalesOrder, r.id), number=r.number, customer=r.customer,
                status=OrderStatus(r.status), version=r.version, created_at=r.created_at,
                updated_at=r.updated_at, actor=r.actor, updated_by=r.updated_by,
                priority=r.priority,
            )
            for r in records
        ]  # fmt: skip
        ids = [r.id for r in records]
        loaders = self.loaders
        if "lines" in wanted:
            built = await self._children(
                loaders.lines_by_order_id, ids, self.lines, wanted["lines"]
            )
            for order, lines in zip(orders, built, strict=True):
                order.lines = lines
        if "allocations" in wanted:
            built_allocations = await self._children(
                loaders.allocations_by_order_id, ids, self.allocations, wanted["allocations"]
            )
            for order, allocations in zip(orders, built_allocations, strict=True):
                order.allocations = allocations
        if "backorders" in wanted:
            built_backorders = await self._children(
                loaders.backorders_by_order_id, ids, self.backorders, wanted["backorders"]
            )
            for order, backorders in zip(orders, built_backorders, strict=True):
                order.backorders = backorders
        if "packedLines" in wanted:
            built_packed = await self._children(
                loaders.packed_lines_by_order_id, ids, self.packed_lines, wanted["packedLines"]
            )
            for order, packed in zip(orders, built_packed, strict=True):
                order.packed_lines = packed
        return orders

    async def lines(self, records: Sequence[LineRecord], wanted: Wanted) -> list[SalesOrderLine]:
        lines = [
            SalesOrderLine(
                id=global_id(SalesOrderLine, r.id), line_number=r.line_number,
                quantity=r.quantity, quantity_cancelled=r.quantity_cancelled,
            )
            for r in records
        ]  # fmt: skip
        ids = [r.id for r in records]
        loaders = self.loaders
        await self._line_quantities(lines, ids, wanted)
        if "allocations" in wanted:
            built = await self._children(
                loaders.allocations_by_line_id, ids, self.allocations, wanted["allocations"]
            )
            for line, allocations in zip(lines, built, strict=True):
                line.allocations = allocations
        if "backorders" in wanted:
            built_backorders = await self._children(
                loaders.backorders_by_line_id, ids, self.backorders, wanted["backorders"]
            )
            for line, backorders in zip(lines, built_backorders, strict=True):
                line.backorders = backorders
        if "packedLines" in wanted:
            built_packed = await self._children(
                loaders.packed_lines_by_line_id, ids, self.packed_lines, wanted["packedLines"]
            )
            for line, packed in zip(lines, built_packed, strict=True):
                line.packed_lines = packed
        if "item" in wanted:
            items = await self._parents(
                loaders.item_by_id, [r.item_id for r in records], self.items, wanted["item"]
            )
            for line, item in zip(lines, items, strict=True):
                line.item = item
        if "salesOrder" in wanted:
            orders = await self._parents(
                loaders.order_by_id, [r.order_id for r in records], self.orders,
                wanted["salesOrder"],
            )  # fmt: skip
            for line, order in zip(lines, orders, strict=True):
                line.sales_order = order
        return lines

    async def _line_quantities(
        self, lines: Sequence[SalesOrderLine], ids: Sequence[int], wanted: Wanted
    ) -> None:
        """Allocated, packed and backordered, from the lines' allocation lines and
        backorders (which the loaders then hold for those edges too)."""
        if wanted.any("quantityAllocated", "quantityPacked"):
            allocated = await self.loaders.allocations_by_line_id.load(ids)
            for line, line_id in zip(lines, ids, strict=True):
                line.quantity_allocated = quantity_allocated(allocated[line_id])
                line.quantity_packed = quantity_packed(allocated[line_id])
        if "quantityBackordered" in wanted:
            waiting = await self.loaders.backorders_by_line_id.load(ids)
            for line, line_id in zip(lines, ids, strict=True):
                line.quantity_backordered = quantity_backordered(waiting[line_id])

    async def allocations(
        self, records: Sequence[AllocationRecord], wanted: Wanted
    ) -> list[Allocation]:
        allocations = [
            Allocation(
                id=global_id(Allocation, r.id), quantity=r.quantity,
                quantity_packed=r.quantity_packed, created_at=r.created_at, actor=r.actor,
                name=allocation_name(r.id),
            )
            for r in records
        ]  # fmt: skip
        loaders = self.loaders
        if "salesOrderLine" in wanted:
            lines = await self._parents(
                loaders.line_by_id, [r.line_id for r in records], self.lines,
                wanted["salesOrderLine"],
            )  # fmt: skip
            for allocation, line in zip(allocations, lines, strict=True):
                allocation.sales_order_line = line
        if "lot" in wanted:  # the lots and locations came with the allocation lines
            lots = await self._parents(
                loaders.lot_by_id, [r.lot.id for r in records], self.lots, wanted["lot"]
            )
            for allocation, lot in zip(allocations, lots, strict=True):
                allocation.lot = lot
        if "location" in wanted:
            locations = await self._parents(
                loaders.location_by_id, [r.location.id for r in records], self.locations,
                wanted["location"],
            )  # fmt: skip
            for allocation, location in zip(allocations, locations, strict=True):
                allocation.location = location
        if "balance" in wanted:
            balances = await self._parents(
                loaders.balance_by_id, [r.balance_id for r in records], self.balances,
                wanted["balance"],
            )  # fmt: skip
            for allocation, balance in zip(allocations, balances, strict=True):
                allocation.balance = balance
        if "salesOrder" in wanted:
            orders = await self._parents(
                loaders.order_by_id, [r.order_id for r in records], self.orders,
                wanted["salesOrder"],
            )  # fmt: skip
            for allocation, order in zip(allocations, orders, strict=True):
                allocation.sales_order = order
        return allocations

    async def backorders(
        self, records: Sequence[BackorderRecord], wanted: Wanted
    ) -> list[Backorder]:
        backorders = [
            Backorder(
                id=global_id(Backorder, r.id), quantity=r.quantity,
                quantity_allocated=r.quantity_allocated, status=BackorderStatus(r.status),
                cancel_reason=r.cancel_reason, cancelled_by=r.cancelled_by,
                created_at=r.created_at, updated_at=r.updated_at,
                name=backorder_name(r.id), quantity_remaining=r.quantity - r.quantity_allocated,
            )
            for r in records
        ]  # fmt: skip
        loaders = self.loaders
        if "salesOrderLine" in wanted:
            lines = await self._parents(
                loaders.line_by_id, [r.line_id for r in records], self.lines,
                wanted["salesOrderLine"],
            )  # fmt: skip
            for backorder, line in zip(backorders, lines, strict=True):
                backorder.sales_order_line = line
        if "salesOrder" in wanted:
            orders = await self._parents(
                loaders.order_by_id, [r.order_id for r in records], self.orders,
                wanted["salesOrder"],
            )  # fmt: skip
            for backorder, order in zip(backorders, orders, strict=True):
                backorder.sales_order = order
        return backorders

    async def packed_lines(
        self, records: Sequence[PackedLineRecord], wanted: Wanted
    ) -> list[PackedLine]:
        packed_lines = [
            PackedLine(
                id=global_id(PackedLine, r.id),
                quantity=r.quantity,
                packed_at=r.packed_at,
                actor=r.actor,
            )
            for r in records
        ]
        loaders = self.loaders
        if "salesOrderLine" in wanted:
            lines = await self._parents(
                loaders.line_by_id, [r.line_id for r in records], self.lines,
                wanted["salesOrderLine"],
            )  # fmt: skip
            for packed, line in zip(packed_lines, lines, strict=True):
                packed.sales_order_line = line
        if "allocations" in wanted:
            built = await self._parents(
                loaders.allocation_by_id, [i for r in records for i in r.allocation_ids],
                self.allocations, wanted["allocations"],
            )  # fmt: skip
            packed_by = iter(built)
            for packed, r in zip(packed_lines, records, strict=True):
                packed.allocations = [next(packed_by) for _ in r.allocation_ids]
        return packed_lines

    # -- stock -------------------------------------------------------------------------

    async def items(self, records: Sequence[ItemRecord], wanted: Wanted) -> list[Item]:
        items = [
            Item(id=global_id(Item, r.id), sku=r.sku, name=r.name, serialized=r.serialized,
                 unit=r.unit, on_hand=r.on_hand, allocated=r.allocated,
                 available=r.on_hand - r.allocated)
            for r in records
        ]  # fmt: skip
        ids = [r.id for r in records]
        if "balances" in wanted:
            built = await self._children(
                self.loaders.balances_by_item_id, ids, self.balances, wanted["balances"]
            )
            for item, balances in zip(items, built, strict=True):
                item.balances = balances
        return items

    async def lots(self, records: Sequence[LotRecord], wanted: Wanted) -> list[Lot]:
        lots = [
            Lot(id=global_id(Lot, r.id), lot_number=r.lot_number, received_at=r.received_at,
                expires_at=r.expires_at)
            for r in records
        ]  # fmt: skip
        if "item" in wanted:
            items = await self._parents(
                self.loaders.item_by_id, [r.item_id for r in records], self.items, wanted["item"]
            )
            for lot, item in zip(lots, items, strict=True):
                lot.item = item
        return lots

    async def locations(self, records: Sequence[LocationRecord], wanted: Wanted) -> list[Location]:
        return [
            Location(id=global_id(Location, r.id), code=r.code, name=r.name,
                     pick_sequence=r.pick_sequence)
            for r in records
        ]  # fmt: skip

    async def balances(
        self, records: Sequence[BalanceRecord], wanted: Wanted
    ) -> list[InventoryBalance]:
        balances = [
            InventoryBalance(
                id=global_id(InventoryBalance, r.id), on_hand=r.on_hand, allocated=r.allocated,
                available=r.on_hand - r.allocated, version=r.version,
            )
            for r in records
        ]  # fmt: skip
        await self._stock_of(balances, records, wanted)
        return balances

    async def _stock_of(
        self,
        objects: Sequence[InventoryBalance | InventoryAdjustment],
        balances: Sequence[BalanceRecord],
        wanted: Wanted,
    ) -> None:
        """The item, lot and location of each balance, set on the object it belongs to."""
        loaders = self.loaders
        if "item" in wanted:
            items = await self._parents(
                loaders.item_by_id, [b.item_id for b in balances], self.items, wanted["item"]
            )
            for obj, item in zip(objects, items, strict=True):
                obj.item = item
        if "lot" in wanted:
            lots = await self._parents(
                loaders.lot_by_id, [b.lot_id for b in balances], self.lots, wanted["lot"]
            )
            for obj, lot in zip(objects, lots, strict=True):
                obj.lot = lot
        if "location" in wanted:
            locations = await self._parents(
                loaders.location_by_id, [b.location_id for b in balances], self.locations,
                wanted["location"],
            )  # fmt: skip
            for obj, location in zip(objects, locations, strict=True):
                obj.location = location

    async def adjustments(
        self, records: Sequence[AdjustmentRecord], wanted: Wanted
    ) -> list[InventoryAdjustment]:
        adjustments = [
            InventoryAdjustment(
                id=global_id(InventoryAdjustment, r.id), quantity=r.quantity, reason=r.reason,
                created_at=r.created_at, actor=r.actor,
            )
            for r in records
        ]  # fmt: skip
        if wanted.any("balance", "item", "lot", "location"):
            found = await self.loaders.balance_by_id.load([r.balance_id for r in records])
            balances = [found[r.balance_id] for r in records]
            assert all(b is not None for b in balances), "an adjustment names no balance"
            stocked = [b for b in balances if b is not None]
            await self._stock_of(adjustments, stocked, wanted)
            if "balance" in wanted:
                built = await self.balances(stocked, wanted["balance"])
                for adjustment, balance in zip(adjustments, built, strict=True):
                    adjustment.balance = balance
        return adjustments

    async def _optional_parents(
        self,
        loader: Loader[int, R, R | None],
        keys: Sequence[int | None],
        build: Build[R, T],
        wanted: Wanted,
    ) -> list[T | None]:
        """As _parents, for a key that may be None (a deleted row's)."""
        given = [key for key in keys if key is not None]
        built = dict(zip(given, await self._parents(loader, given, build, wanted), strict=True))
        return [built[key] if key is not None else None for key in keys]

    async def movements(self, records: Sequence[MovementRecord], wanted: Wanted) -> list[Movement]:
        movements = [
            Movement(
                id=global_id(Movement, r.id), kind=MovementKind(r.kind),
                on_hand_delta=r.on_hand_delta, allocated_delta=r.allocated_delta,
                allocation_name=r.allocation_name, actor=r.actor, reason=r.reason,
                request_id=r.request_id, created_at=r.created_at,
            )
            for r in records
        ]  # fmt: skip
        loaders = self.loaders
        if "balance" in wanted:
            balances = await self._parents(
                loaders.balance_by_id, [r.balance_id for r in records], self.balances,
                wanted["balance"],
            )  # fmt: skip
            for movement, balance in zip(movements, balances, strict=True):
                movement.balance = balance
        if "salesOrderLine" in wanted:
            lines = await self._optional_parents(
                loaders.line_by_id, [r.sales_order_line_id for r in records], self.lines,
                wanted["salesOrderLine"],
            )  # fmt: skip
            for movement, line in zip(movements, lines, strict=True):
                movement.sales_order_line = line
        if "allocation" in wanted:
            allocations = await self._optional_parents(
                loaders.allocation_by_id, [r.allocation_id for r in records],
                self.allocations, wanted["allocation"],
            )  # fmt: skip
            for movement, allocation in zip(movements, allocations, strict=True):
                movement.allocation = allocation
        return movements

    # -- planning (SPEC section 9) --------------------------------------------------------

    async def allocation_preview(
        self, preview: planning.AllocationPreview, wanted: Wanted
    ) -> AllocationPreview:
        """From a preview whose snapshot primed the loaders: the order, its lines and the
        lots and locations of the picks cost no statement; balances one, if selected."""
        built = AllocationPreview(version=preview.version)
        loaders = self.loaders
        if "salesOrder" in wanted:
            (built.sales_order,) = await self._parents(
                loaders.order_by_id, [preview.order_id], self.orders, wanted["salesOrder"]
            )
        if "lines" in wanted:
            built.lines = await self._line_previews(preview.lines, wanted["lines"])
        return built

    async def _line_previews(
        self, previews: Sequence[planning.LinePreview], wanted: Wanted
    ) -> list[LinePreview]:
        lines = [
            LinePreview(
                shortfall=p.shortfall, skipped=ErrorCode.SERIALIZED_ITEM if p.serialized else None
            )
            for p in previews
        ]
        if "salesOrderLine" in wanted:
            built = await self._parents(
                self.loaders.line_by_id, [p.line_id for p in previews], self.lines,
                wanted["salesOrderLine"],
            )  # fmt: skip
            for line, order_line in zip(lines, built, strict=True):
                line.sales_order_line = order_line
        if "allocations" in wanted:
            proposed = iter(
                await self._proposed([pick for p in previews for pick in p.picks],
                                     wanted["allocations"])
            )  # fmt: skip
            for line, p in zip(lines, previews, strict=True):
                line.allocations = [next(proposed) for _ in p.picks]
        return lines

    async def _proposed(self, picks: Sequence[Pick], wanted: Wanted) -> list[ProposedAllocation]:
        proposed = [ProposedAllocation(quantity=pick.quantity) for pick in picks]
        loaders = self.loaders
        if "balance" in wanted:
            balances = await self._parents(
                loaders.balance_by_id, [p.balance_id for p in picks], self.balances,
                wanted["balance"],
            )  # fmt: skip
            for allocation, balance in zip(proposed, balances, strict=True):
                allocation.balance = balance
        if "lot" in wanted:
            lots = await self._parents(
                loaders.lot_by_id, [p.lot_id for p in picks], self.lots, wanted["lot"]
            )
            for allocation, lot in zip(proposed, lots, strict=True):
                allocation.lot = lot
        if "location" in wanted:
            locations = await self._parents(
                loaders.location_by_id, [p.location_id for p in picks], self.locations,
                wanted["location"],
            )  # fmt: skip
            for allocation, location in zip(proposed, locations, strict=True):
                allocation.location = location
        return proposed

    async def available_to_promise(
        self, record: PromiseRecord, wanted: Wanted
    ) -> AvailableToPromise:
        """The figures narrowed to the balances read; the backorders and what can be
        promised are the item's, whatever the narrowing."""
        loaders = self.loaders
        loaders.item_by_id.prime(record.item.id, record.item)  # a lot's item: no statement
        for balance in record.balances:
            loaders.lot_by_id.prime(balance.lot.id, balance.lot)
            loaders.location_by_id.prime(balance.location.id, balance.location)
        on_hand = sum(b.on_hand for b in record.balances)
        allocated = sum(b.allocated for b in record.balances)
        item_available = record.item.on_hand - record.item.allocated
        promise = AvailableToPromise(
            sku=record.item.sku, on_hand=on_hand, allocated=allocated,
            available=on_hand - allocated, open_backorder_quantity=record.backordered,
            promisable=item_available - record.backordered,
        )  # fmt: skip
        if "byLocation" in wanted:
            promise.by_location = await self._stock_at(
                record.balances, lambda b: (b.location.pick_sequence, b.location.code),
                by_lot=False, wanted=wanted["byLocation"],
            )  # fmt: skip
        if "byLot" in wanted:
            promise.by_lot = await self._stock_at(
                record.balances, lambda b: (b.lot.received_at, b.lot.lot_number),
                by_lot=True, wanted=wanted["byLot"],
            )  # fmt: skip
        return promise

    async def _stock_at(
        self,
        balances: Sequence[StockAtRecord],
        order: Callable[[StockAtRecord], tuple[object, ...]],
        *,
        by_lot: bool,
        wanted: Wanted,
    ) -> list[StockAt]:
        """The balances summed by lot (by_lot) or by location, groups in the order given;
        the other of the two is null, since the sum is over all of them."""
        groups: dict[int, list[StockAtRecord]] = {}
        for balance in sorted(balances, key=order):
            key = balance.lot.id if by_lot else balance.location.id
            groups.setdefault(key, []).append(balance)
        summed = []
        for group in groups.values():
            on_hand, allocated = sum(b.on_hand for b in group), sum(b.allocated for b in group)
            summed.append(
                StockAt(on_hand=on_hand, allocated=allocated, available=on_hand - allocated)
            )
        firsts = [group[0] for group in groups.values()]
        if "lot" in wanted:
            lots = await self.lots([b.lot for b in firsts], wanted["lot"]) if by_lot else None
            for index, stock in enumerate(summed):
                stock.lot = lots[index] if lots else None
        if "location" in wanted:
            below = wanted["location"]
            places = None if by_lot else await self.locations([b.location for b in firsts], below)
            for index, stock in enumerate(summed):
                stock.location = places[index] if places else None
        return summed

    # -- by global id ------------------------------------------------------------------

    def node_kinds(self) -> Mapping[str, NodesById]:
        """For each type a global id can name: its objects by pk, built."""
        loaders = self.loaders

        def of(loader: Loader[int, R, R | None], build: Build[R, T]) -> NodesOf[T]:
            return lambda ids, wanted: self.by_id(loader, ids, build, wanted)

        return {
            SalesOrder.__name__: of(loaders.order_by_id, self.orders),
            SalesOrderLine.__name__: of(loaders.line_by_id, self.lines),
            Allocation.__name__: of(loaders.allocation_by_id, self.allocations),
            Backorder.__name__: of(loaders.backorder_by_id, self.backorders),
            PackedLine.__name__: of(loaders.packed_line_by_id, self.packed_lines),
            Item.__name__: of(loaders.item_by_id, self.items),
            Lot.__name__: of(loaders.lot_by_id, self.lots),
            Location.__name__: of(loaders.location_by_id, self.locations),
            InventoryBalance.__name__: of(loaders.balance_by_id, self.balances),
            InventoryAdjustment.__name__: of(loaders.adjustment_by_id, self.adjustments),
            Movement.__name__: of(loaders.movement_by_id, self.movements),
        }
