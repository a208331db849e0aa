"""Who may do what (SPEC section 7): the credential a request carries, and the scope each
root field and mutation needs, checked in one place when the schema is built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from graphql import (
    GraphQLError,
    GraphQLField,
    GraphQLFieldResolver,
    GraphQLResolveInfo,
    GraphQLSchema,
    get_named_type,
)
from strawberry.schema.schema_converter import GraphQLCoreConverter

from resolvers.arguments import bad_argument
from schema.enums import ErrorCode
from schema.errors import UserError


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


# -- what each root field needs ------------------------------------------------------------
# Every root field of the schema is in one of these tables; build_schema refuses to start
# otherwise (require_scopes), so no operation can be added without a scope.

READ_ORDERS = ("salesOrder", "salesOrders", "backorders", "previewAllocation")
READ_INVENTORY = ("item", "items", "location", "inventory", "movements", "availableToPromise")
QUERY_SCOPES: dict[str, Scope | None] = {
    **dict.fromkeys(READ_ORDERS, Scope.ORDERS_READ),
    **dict.fromkeys(READ_INVENTORY, Scope.INVENTORY_READ),
    # By the type each id names (NODE_SCOPES), checked where the ids are read.
    "node": None,
    "nodes": None,
}
MUTATION_SCOPES: dict[str, Scope] = {
    **dict.fromkeys(
        ("createSalesOrder", "addSalesOrderLine", "updateSalesOrderLine",
         "deleteSalesOrderLine", "setSalesOrderPriority"),
        Scope.ORDERS_WRITE,
    ),
    **dict.fromkeys(
        ("allocateOrder", "removeAllocationLines", "fillBackorders"), Scope.ALLOCATIONS_WRITE
    ),
    "packAllocatedOrder": Scope.PACKING_WRITE,
    **dict.fromkeys(("cancelBackorder", "deleteBackorder"), Scope.BACKORDERS_WRITE),
    **dict.fromkeys(("createItem", "createLocation", "adjustInventory"), Scope.INVENTORY_WRITE),
}  # fmt: skip
# The read scope of each type a global id can name.
NODE_SCOPES: dict[str, Scope] = {
    **dict.fromkeys(
        ("SalesOrder", "SalesOrderLine", "Allocation", "Backorder", "PackedLine"),
        Scope.ORDERS_READ,
    ),
    **dict.fromkeys(
        ("Item", "Lot", "Location", "InventoryBalance", "InventoryAdjustment", "Movement"),
        Scope.INVENTORY_READ,
    ),
}


def forbidden(scope: Scope) -> str:
    return f"This needs the scope {scope.value}, which the credential does not have."


class _HasCredential(Protocol):
    """The request's context, as far as the guard uses it."""

    credential: Credential
    retryable_refusal: bool


class MissingScope(Exception):  # noqa: N818 - a refusal to start, named for what is missing
    """A root field without an entry in QUERY_SCOPES or MUTATION_SCOPES."""


def guard_root_fields(schema: GraphQLSchema) -> None:
    """Put every root field behind its scope and the edge's argument checks: the one
    place both are checked. A query answers a refusal as a GraphQL error at the field,
    with `extensions.code`; a mutation as its payload's `errors` (HTTP 200)."""
    for root, scopes, refuse in (
        (schema.query_type, QUERY_SCOPES, _refuse_query),
        (schema.mutation_type, MUTATION_SCOPES, _refuse_mutation),
    ):
        assert root is not None
        for name, field in root.fields.items():
            if name not in scopes:
                raise MissingScope(f"{root.name}.{name} has no scope in resolvers/access.py")
            field.resolve = _guarded(field, scopes[name], refuse)


Refuse = Callable[[GraphQLField, ErrorCode, str, tuple[str, ...] | None], object]


def _guarded(field: GraphQLField, scope: Scope | None, refuse: Refuse) -> GraphQLFieldResolver:
    resolve = field.resolve
    assert resolve is not None

    def guarded(
        source: object, info: GraphQLResolveInfo[_HasCredential], **arguments: object
    ) -> object:
        credential = info.context.credential
        if scope is not None and not credential.may(scope):
            info.context.retryable_refusal = True  # another credential may be allowed
            return refuse(field, ErrorCode.FORBIDDEN, forbidden(scope), None)
        bad = bad_argument(arguments)
        if bad is not None:
            return refuse(field, ErrorCode.INVALID_INPUT, bad.message, bad.path)
        return resolve(source, info, **arguments)

    return guarded


def _refuse_query(
    field: GraphQLField, code: ErrorCode, message: str, path: tuple[str, ...] | None
) -> object:
    extensions: dict[str, object] = {"code": code.value}
    if path is not None:
        extensions["field"] = list(path)
    raise GraphQLError(message, extensions=extensions)


def _refuse_mutation(
    field: GraphQLField, code: ErrorCode, message: str, path: tuple[str, ...] | None
) -> object:
    """The mutation's payload, with the refusal as its one error."""
    payload_type = get_named_type(field.type)
    definition = payload_type.extensions[GraphQLCoreConverter.DEFINITION_BACKREF]
    error = UserError(code=code, field=list(path) if path else None, message=message)
    return definition.origin(errors=[error])
