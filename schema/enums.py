"""GraphQL enums, taken from the domain's own so the two cannot drift."""

import strawberry

from services.domain.errors import ErrorCode as DomainErrorCode
from services.domain.order import BackorderStatus as DomainBackorderStatus
from services.domain.order import OrderStatus as DomainOrderStatus
from services.domain.planner import AllocationStrategy as DomainAllocationStrategy

ErrorCode = strawberry.enum(
    DomainErrorCode, name="ErrorCode", description="Why a mutation did not do what was asked."
)
OrderStatus = strawberry.enum(
    DomainOrderStatus, name="OrderStatus", description="Derived from the lines' quantities."
)
BackorderStatus = strawberry.enum(DomainBackorderStatus, name="BackorderStatus")
AllocationStrategy = strawberry.enum(
    DomainAllocationStrategy,
    name="AllocationStrategy",
    description="The order in which balances are drawn; id is always the last tie-break.",
)
