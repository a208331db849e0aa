"""Mutation payloads and connections. Every payload has `errors`; where a mutation
fails its objects are null or empty."""

from __future__ import annotations

from typing import Generic, TypeVar

import strawberry

from schema.errors import UserError
from schema.types import (
    Allocation,
    Backorder,
    InventoryAdjustment,
    InventoryBalance,
    Item,
    Location,
    PackedLine,
    SalesOrder,
)

NodeT = TypeVar("NodeT")


@strawberry.type
class Payload:
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ItemPayload(Payload):
    item: Item | None = None


@strawberry.type
class LocationPayload(Payload):
    location: Location | None = None


@strawberry.type
class FillBackordersPayload(Payload):
    backorders: list[Backorder] = strawberry.field(
        default_factory=list,
        description="The backorders this call filled, in full (ALLOCATED) or in part (OPEN), "
        "in fill order.",
    )
    allocations: list[Allocation] = strawberry.field(
        default_factory=list, description="The allocation lines this call created, in fill order."
    )


@strawberry.type
class AdjustInventoryPayload(Payload):
    balance: InventoryBalance | None = None
    adjustment: InventoryAdjustment | None = None
    filled: FillBackordersPayload | None = strawberry.field(
        default=None,
        description="With AUTO_FILL_BACKORDERS=true, the fill a receipt ran for its item after "
        "its own commit; its errors never undo the adjustment. Null when auto-fill is off, "
        "for a write-off, or when the adjustment failed.",
    )


DELETED_ID = (
    "The global id of what this call deleted (deleteSalesOrderLine, deleteBackorder), for a "
    "client cache to evict; null for every other call."
)


@strawberry.type
class SalesOrderPayload(Payload):
    sales_order: SalesOrder | None = None
    deleted_id: strawberry.ID | None = strawberry.field(default=None, description=DELETED_ID)


@strawberry.type
class AllocateOrderPayload(Payload):
    sales_order: SalesOrder | None = None
    allocations: list[Allocation] = strawberry.field(
        default_factory=list, description="The allocation lines this call created."
    )


@strawberry.type
class PackAllocatedOrderPayload(Payload):
    sales_order: SalesOrder | None = None
    packed_lines: list[PackedLine] = strawberry.field(
        default_factory=list, description="The packed lines this call created."
    )


@strawberry.type
class RemoveAllocationLinesPayload(Payload):
    sales_order: SalesOrder | None = None
    removed_ids: list[strawberry.ID] = strawberry.field(default_factory=list)


@strawberry.type
class BackorderPayload(Payload):
    backorder: Backorder | None = None
    sales_order: SalesOrder | None = None
    deleted_id: strawberry.ID | None = strawberry.field(default=None, description=DELETED_ID)


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]]
    page_info: PageInfo
    total_count: int
    nodes: list[NodeT]
