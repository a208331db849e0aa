"""The object types, as plain attributes.

resolvers/graph.py builds them for the fields a request selected, one batch per edge
and level, before GraphQL reads them: so every field here resolves by attribute, with
no awaited resolver per object. A field filled only when selected (an edge, or a
figure computed from one) is declared `dataclasses.field(init=False)`; the builder
sets it when it is selected, and GraphQL never reads one that is not.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from schema.enums import BackorderStatus, ErrorCode, MovementKind, OrderStatus


def selected(description: str | None = None) -> Any:  # Any: what a field spec is to mypy
    """A field that resolvers/graph.py sets only when the request selects it: not an
    argument of the constructor."""
    spec = strawberry.field(description=description)
    spec.init = False
    return spec


@strawberry.interface(description="An object with a Relay global id.")
class Node:
    id: strawberry.ID


@strawberry.type
class Item(Node):
    sku: str
    name: str
    serialized: bool
    unit: str
    on_hand: int = strawberry.field(description="Summed over the item's balances.")
    allocated: int
    available: int
    balances: list[InventoryBalance] = selected()


@strawberry.type
class Location(Node):
    code: str
    name: str
    pick_sequence: int = strawberry.field(description="Lower is picked first.")


@strawberry.type
class Lot(Node):
    lot_number: str
    received_at: datetime
    expires_at: datetime | None
    item: Item = selected()


@strawberry.type
class InventoryBalance(Node):
    on_hand: int
    allocated: int
    available: int
    version: int
    item: Item = selected()
    lot: Lot = selected()
    location: Location = selected()


@strawberry.type
class InventoryAdjustment(Node):
    quantity: int = strawberry.field(description="Signed: negative writes stock off.")
    reason: str
    created_at: datetime
    actor: str = strawberry.field(description="Who adjusted the stock.")
    balance: InventoryBalance = selected()
    item: Item = selected()
    lot: Lot = selected()
    location: Location = selected()


@strawberry.type(
    description="An allocation line: stock of one lot at one location "
    "reserved for a sales-order line."
)
class Allocation(Node):
    quantity: int
    quantity_packed: int
    created_at: datetime
    actor: str = strawberry.field(description="Who allocated it.")
    name: str = strawberry.field(description="e.g. AL-000017")
    sales_order_line: SalesOrderLine = selected()
    lot: Lot = selected()
    location: Location = selected()
    balance: InventoryBalance = selected()
    sales_order: SalesOrder = selected()


@strawberry.type
class Backorder(Node):
    quantity: int
    quantity_allocated: int
    status: BackorderStatus
    cancel_reason: str | None
    cancelled_by: str | None = strawberry.field(
        description="Who cancelled it; null unless cancelled."
    )
    created_at: datetime
    updated_at: datetime
    name: str = strawberry.field(description="e.g. BO-000003")
    quantity_remaining: int = strawberry.field(
        description="quantity - quantityAllocated: still waiting for stock."
    )
    sales_order_line: SalesOrderLine = selected()
    sales_order: SalesOrder = selected()


@strawberry.type(description="A packed sales-order line: quantity packed for shipping.")
class PackedLine(Node):
    quantity: int
    packed_at: datetime
    actor: str = strawberry.field(description="Who packed it.")
    sales_order_line: SalesOrderLine = selected()
    allocations: list[Allocation] = selected("The allocation lines this packed.")


@strawberry.type
class SalesOrderLine(Node):
    line_number: int
    quantity: int
    quantity_cancelled: int
    item: Item = selected()
    sales_order: SalesOrder = selected()
    quantity_allocated: int = selected("All allocation lines, packed or not.")
    quantity_packed: int = selected()
    quantity_backordered: int = selected("What the open backorder still waits for.")
    allocations: list[Allocation] = selected()
    backorders: list[Backorder] = selected()
    packed_lines: list[PackedLine] = selected()


@strawberry.type
class SalesOrder(Node):
    number: str
    customer: str
    status: OrderStatus
    version: int = strawberry.field(description="Pass as expectedVersion to guard a change.")
    created_at: datetime
    updated_at: datetime
    actor: str = strawberry.field(description="Who created it.")
    updated_by: str = strawberry.field(
        description="Who changed it last: its lines, priority, allocation, packing, "
        "removal or backorders."
    )
    priority: int = strawberry.field(
        description="Higher is filled first by fillBackorders (-1000 to 1000, default 0)."
    )
    lines: list[SalesOrderLine] = selected()
    allocations: list[Allocation] = selected()
    backorders: list[Backorder] = selected()
    packed_lines: list[PackedLine] = selected()


@strawberry.type(
    description="One change to a balance's on hand or allocated, on the append-only ledger: "
    "for every balance, onHand is the sum of its movements' onHandDelta and allocated the "
    "sum of their allocatedDelta."
)
class Movement(Node):
    kind: MovementKind
    on_hand_delta: int
    allocated_delta: int
    allocation_name: str | None = strawberry.field(
        description="The allocation line's name (e.g. AL-000017), kept after it is removed."
    )
    actor: str
    reason: str | None
    request_id: str | None = strawberry.field(
        description="The X-Request-Id of the request that made it; null for OPENING."
    )
    created_at: datetime
    balance: InventoryBalance = selected()
    sales_order_line: SalesOrderLine | None = selected("Null once the line is deleted.")
    allocation: Allocation | None = selected("Null once the allocation line is removed.")


NODE_TYPES = (
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
    Movement,
)


# -- planning (SPEC section 9): answers worked out, not rows, so they have no id ---------


@strawberry.type(description="Stock that allocateOrder would reserve from one balance.")
class ProposedAllocation:
    quantity: int
    balance: InventoryBalance = selected()
    lot: Lot = selected()
    location: Location = selected()


@strawberry.type(description="What allocateOrder would do to one sales-order line now.")
class LinePreview:
    shortfall: int = strawberry.field(
        description="What would be left backordered: 0 for a line with no open demand."
    )
    skipped: ErrorCode | None = strawberry.field(
        description="SERIALIZED_ITEM for a line of a serialized item (then no allocations "
        "and shortfall 0); otherwise null."
    )
    sales_order_line: SalesOrderLine = selected()
    allocations: list[ProposedAllocation] = selected("In the order the planner takes them.")


@strawberry.type(description="What allocateOrder would do to an order now; nothing written.")
class AllocationPreview:
    version: int = strawberry.field(
        description="The order's version the preview was worked out at: send it as "
        "allocateOrder's expectedVersion to get exactly this, or a VERSION_CONFLICT."
    )
    sales_order: SalesOrder = selected()
    lines: list[LinePreview] = selected("Every line of the order, by line number.")


@strawberry.type(description="Stock of an item summed at one location or in one lot.")
class StockAt:
    on_hand: int
    allocated: int
    available: int
    location: Location | None = selected("Null in byLot: summed over locations.")
    lot: Lot | None = selected("Null in byLocation: summed over lots.")


@strawberry.type(description="What of an item can still be promised to a new order.")
class AvailableToPromise:
    sku: str
    on_hand: int = strawberry.field(description="Narrowed by locationCode and lotNumber.")
    allocated: int
    available: int
    open_backorder_quantity: int = strawberry.field(
        description="Still waiting on OPEN backorders of the item, item-wide."
    )
    promisable: int = strawberry.field(
        description="The item's available (item-wide) less openBackorderQuantity; "
        "negative when backorders already wait for more than is available."
    )
    by_location: list[StockAt] = selected("By pickSequence, then code.")
    by_lot: list[StockAt] = selected("By receivedAt, then lotNumber.")
