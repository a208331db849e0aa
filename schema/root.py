"""The root Query and Mutation, and the Schema with its protective extensions."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors, ParserCache, ValidationCache

from resolvers import mutations, queries
from schema.payloads import Connection
from schema.types import NODE_TYPES, Backorder, Item, Location, Node, SalesOrder


@strawberry.type
class Query:
    node: Node | None = strawberry.field(resolver=queries.node)
    sales_order: SalesOrder | None = strawberry.field(resolver=queries.sales_order)
    item: Item | None = strawberry.field(resolver=queries.item)
    location: Location | None = strawberry.field(resolver=queries.location)
    sales_orders: Connection[SalesOrder] = strawberry.field(resolver=queries.sales_orders)
    items: Connection[Item] = strawberry.field(resolver=queries.items)
    backorders: Connection[Backorder] = strawberry.field(resolver=queries.backorders)


@strawberry.type
class Mutation:
    create_item = strawberry.mutation(resolver=mutations.create_item)
    create_location = strawberry.mutation(resolver=mutations.create_location)
    adjust_inventory = strawberry.mutation(resolver=mutations.adjust_inventory)
    create_sales_order = strawberry.mutation(resolver=mutations.create_sales_order)
    add_sales_order_line = strawberry.mutation(resolver=mutations.add_sales_order_line)
    update_sales_order_line = strawberry.mutation(resolver=mutations.update_sales_order_line)
    delete_sales_order_line = strawberry.mutation(resolver=mutations.delete_sales_order_line)
    allocate_order = strawberry.mutation(resolver=mutations.allocate_order)
    pack_allocated_order = strawberry.mutation(resolver=mutations.pack_allocated_order)
    remove_allocation_lines = strawberry.mutation(resolver=mutations.remove_allocation_lines)
    cancel_backorder = strawberry.mutation(resolver=mutations.cancel_backorder)
    delete_backorder = strawberry.mutation(resolver=mutations.delete_backorder)


def _is_unexpected(error: GraphQLError) -> bool:
    """Mask errors raised by our code unless they are GraphQL errors we meant to
    show; the client's own mistakes (syntax, validation) stay readable. Strawberry
    has already logged each one with its traceback (logger strawberry.execution)."""
    return error.original_error is not None and not isinstance(error.original_error, GraphQLError)


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        types=list(NODE_TYPES.values()),
        # Factories: strawberry builds fresh extensions per request; the two caches
        # live at module level, so they are still shared across requests.
        extensions=[
            lambda: MaskErrors(should_mask_error=_is_unexpected, error_message="Unexpected error."),
            lambda: ParserCache(maxsize=256),
            lambda: ValidationCache(maxsize=256),
        ],
    )
