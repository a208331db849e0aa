"""GraphQL enums: the domain's own classes, registered with strawberry, so the two
cannot drift and resolvers can return domain values directly. Error codes are the
domain's and the API's own (tests/test_sdl.py checks that every domain code is here)."""

from enum import StrEnum

import strawberry

from services.domain.order import BackorderStatus, OrderStatus
from services.domain.planner import AllocationStrategy


@strawberry.enum(description="Why a mutation did not do what was asked.")
class ErrorCode(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    INVALID_INPUT = "INVALID_INPUT"
    DUPLICATE = "DUPLICATE"
    SERIALIZED_ITEM = "SERIALIZED_ITEM"
    NOTHING_TO_PACK = "NOTHING_TO_PACK"
    ALLOCATION_PACKED = "ALLOCATION_PACKED"
    QUANTITY_BELOW_ALLOCATED = "QUANTITY_BELOW_ALLOCATED"
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    BACKORDER_NOT_OPEN = "BACKORDER_NOT_OPEN"
    LINE_HAS_ALLOCATIONS = "LINE_HAS_ALLOCATIONS"
    VERSION_CONFLICT = "VERSION_CONFLICT"
    # Not the domain's: the database could not be reached; retry shortly.
    UNAVAILABLE = "UNAVAILABLE"
    # Not the domain's: the credential lacks the scope the operation needs.
    FORBIDDEN = "FORBIDDEN"


@strawberry.enum(description="The order of a salesOrders connection.")
class SalesOrderOrder(StrEnum):
    CREATED = "CREATED"  # by creation (id), oldest first: the default
    PRIORITY = "PRIORITY"  # fillBackorders' order: priority highest first, then created, id


@strawberry.enum(description="What moved a balance's stock (SPEC section 8).")
class MovementKind(StrEnum):
    OPENING = "OPENING"  # a balance's figures when the ledger began (a migration)
    RECEIPT = "RECEIPT"  # adjustInventory up
    WRITE_OFF = "WRITE_OFF"  # adjustInventory down
    ALLOCATE = "ALLOCATE"
    DEALLOCATE = "DEALLOCATE"
    PACK = "PACK"  # on hand and allocated both down by the packed quantity


strawberry.enum(OrderStatus, description="Derived from the lines' quantities.")
strawberry.enum(BackorderStatus)
strawberry.enum(
    AllocationStrategy,
    description="The order in which balances are drawn; id is always the last tie-break.",
)

__all__ = [
    "AllocationStrategy",
    "BackorderStatus",
    "ErrorCode",
    "MovementKind",
    "OrderStatus",
    "SalesOrderOrder",
]
