"""GraphQL enums: the domain's own classes, registered with strawberry, so the two
cannot drift and resolvers can return domain values directly."""

import strawberry

from services.domain.errors import ErrorCode
from services.domain.order import BackorderStatus, OrderStatus
from services.domain.planner import AllocationStrategy

strawberry.enum(ErrorCode, description="Why a mutation did not do what was asked.")
strawberry.enum(OrderStatus, description="Derived from the lines' quantities.")
strawberry.enum(BackorderStatus)
strawberry.enum(
    AllocationStrategy,
    description="The order in which balances are drawn; id is always the last tie-break.",
)

__all__ = ["AllocationStrategy", "BackorderStatus", "ErrorCode", "OrderStatus"]
