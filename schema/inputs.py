"""Input objects."""

from __future__ import annotations

from datetime import datetime

import strawberry

from schema.enums import MovementKind, OrderStatus


@strawberry.input
class CreateItemInput:
    sku: str
    name: str
    serialized: bool = False
    unit: str = "EA"


@strawberry.input
class CreateLocationInput:
    code: str
    name: str
    pick_sequence: int = 0


@strawberry.input
class AdjustInventoryInput:
    sku: str
    lot_number: str
    location_code: str
    quantity: int = strawberry.field(description="Signed: negative writes stock off.")
    reason: str = ""
    received_at: datetime | None = strawberry.field(
        default=None, description="For a new lot; defaults to now."
    )
    expires_at: datetime | None = strawberry.field(
        default=None, description="For a new lot; null for items that do not expire."
    )


@strawberry.input
class SalesOrderLineInput:
    sku: str
    quantity: int


@strawberry.input
class CreateSalesOrderInput:
    customer: str
    number: str | None = strawberry.field(
        default=None, description="Defaults to the next SO-nnnnnn."
    )
    lines: list[SalesOrderLineInput] = strawberry.field(default_factory=list)
    priority: int = strawberry.field(
        default=0, description="Higher is filled first by fillBackorders; -1000 to 1000."
    )


@strawberry.input
class SalesOrderFilter:
    status: OrderStatus | None = None
    customer: str | None = None
    sku: str | None = strawberry.field(default=None, description="Orders with a line of it.")
    created_after: datetime | None = None
    created_before: datetime | None = None
    min_priority: int | None = strawberry.field(
        default=None, description="Orders of at least this priority."
    )


@strawberry.input(description="Movements of balances of this item, lot, location, order, kind.")
class MovementFilter:
    sku: str | None = None
    lot_number: str | None = None
    location_code: str | None = None
    sales_order_id: strawberry.ID | None = None
    kind: MovementKind | None = None
