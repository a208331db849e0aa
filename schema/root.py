"""The root Query and Mutation, and the Schema with its gate (limits and caches)."""

from __future__ import annotations

import strawberry
from graphql import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions.max_aliases import create_validator as alias_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule

from resolvers import mutations, queries
from resolvers.access import guard_root_fields
from schema.execution import (
    AllocationSchema,
    Limits,
    RequestGate,
    idempotent,
    read_attributes_directly,
)
from schema.payloads import Connection
from schema.settings import Settings
from schema.types import (
    NODE_TYPES,
    AllocationPreview,
    AvailableToPromise,
    Backorder,
    InventoryBalance,
    Item,
    Location,
    Movement,
    Node,
    SalesOrder,
)


@strawberry.type
class Query:
    node: Node | None = strawberry.field(resolver=queries.node)
    nodes: list[Node | None] = strawberry.field(resolver=queries.nodes)
    sales_order: SalesOrder | None = strawberry.field(resolver=queries.sales_order)
    item: Item | None = strawberry.field(resolver=queries.item)
    location: Location | None = strawberry.field(resolver=queries.location)
    sales_orders: Connection[SalesOrder] = strawberry.field(resolver=queries.sales_orders)
    items: Connection[Item] = strawberry.field(resolver=queries.items)
    backorders: Connection[Backorder] = strawberry.field(resolver=queries.backorders)
    inventory: Connection[InventoryBalance] = strawberry.field(resolver=queries.inventory)
    movements: Connection[Movement] = strawberry.field(resolver=queries.movements)
    preview_allocation: AllocationPreview = strawberry.field(
        resolver=queries.preview_allocation,
        description="What allocateOrder would do to the order now, writing nothing.",
    )
    available_to_promise: AvailableToPromise = strawberry.field(
        resolver=queries.available_to_promise,
        description="An item's stock, what its open backorders wait for, and what can "
        "still be promised.",
    )


@strawberry.type
class Mutation:
    create_item = strawberry.mutation(resolver=mutations.create_item)
    create_location = strawberry.mutation(resolver=mutations.create_location)
    adjust_inventory = strawberry.mutation(resolver=mutations.adjust_inventory)
    create_sales_order = strawberry.mutation(resolver=mutations.create_sales_order)
    add_sales_order_line = strawberry.mutation(resolver=mutations.add_sales_order_line)
    update_sales_order_line = strawberry.mutation(resolver=mutations.update_sales_order_line)
    delete_sales_order_line = strawberry.mutation(resolver=mutations.delete_sales_order_line)
    set_sales_order_priority = strawberry.mutation(resolver=mutations.set_sales_order_priority)
    allocate_order = strawberry.mutation(resolver=mutations.allocate_order)
    pack_allocated_order = strawberry.mutation(resolver=mutations.pack_allocated_order)
    remove_allocation_lines = strawberry.mutation(resolver=mutations.remove_allocation_lines)
    fill_backorders = strawberry.mutation(resolver=mutations.fill_backorders)
    cancel_backorder = strawberry.mutation(resolver=mutations.cancel_backorder)
    delete_backorder = strawberry.mutation(resolver=mutations.delete_backorder)


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or Settings(_env_file=None)
    # Made once: the validation cache's key holds the rule classes, and rules made per
    # request would be new ones each time.
    rules: list[type[ASTValidationRule]] = [
        depth_rule(settings.max_depth, None, None),
        alias_rule(settings.max_aliases),
    ]
    if not settings.introspection:
        rules.append(NoSchemaIntrospectionCustomRule)
    limits = Limits(settings.max_tokens, tuple(rules), settings.max_cost)
    schema = AllocationSchema(
        query=Query, mutation=Mutation, types=list(NODE_TYPES),
        # A factory: strawberry makes the extension anew for each request; its caches
        # live at module level, so they are shared.
        extensions=[lambda: RequestGate(limits)], directives=[idempotent],
    )  # fmt: skip
    read_attributes_directly(schema._schema)
    guard_root_fields(schema._schema)
    return schema
