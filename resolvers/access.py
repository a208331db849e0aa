"""Who may do what (SPEC section 7): the credential a request carries, and the scope each
root field and mutation needs, checked in one place when the schema is built."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    ORDERS_READ = "orders:read"
    ORDERS_WRITE = "orders:write"  # create orders, add, change and delete lines, priority
    ALLOCATIONS_WRITE = "allocations:write"  # allocateOrder, removeAllocationLines, fills
    PACKING_WRITE = "packing:write"
    BACKORDERS_WRITE = "backorders:write"
    INVENTORY_READ = "inventory:read"
    INVENTORY_WRITE = "inventory:write"  # items, locations, stock adjustments
    ADMIN = "admin"  # all of them


ALL_SCOPES = frozenset(Scope)
ANONYMOUS = "anonymous"  # the actor of a request without a credential in open mode
RESERVED_ACTORS = frozenset({ANONYMOUS, "system"})


@dataclass(frozen=True)
class Credential:
    """Who a request acts as, and what it may do.

    `actor` goes on record with every change; `owner` tells idempotency keys of
    different credentials apart (an API key's id, a token's issuer and subject)."""

    actor: str
    scopes: frozenset[Scope]
    owner: str

    def may(self, scope: Scope) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes


OPEN = Credential(ANONYMOUS, ALL_SCOPES, f"open:{ANONYMOUS}")  # no credential, open mode
