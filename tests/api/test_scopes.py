"""Scopes for every operation (SPEC section 7), checked in one place: a table test over
every query field and mutation of the committed SDL. With its scope each runs; without
it each answers FORBIDDEN (a payload error for a mutation, a GraphQL error at the field
for a query) and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from graphql import build_schema as parse_sdl
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.database import Database
from db.tables import Base
from resolvers.access import (
    MUTATION_SCOPES,
    NODE_SCOPES,
    QUERY_SCOPES,
    Credential,
    MissingScope,
    Scope,
    guard_root_fields,
)
from resolvers.context import Context
from resolvers.ids import to_global_id
from schema.root import build_schema
from services import orders
from services.ports import UnitOfWorkFactory
from tests.service import helpers

SDL = Path(__file__).resolve().parent.parent.parent / "schema" / "schema.graphql"


@dataclass(frozen=True)
class World:
    """An order A allocated (5 of 8: a backorder of 3) and an order B not yet allocated."""

    order_a: int
    order_b: int
    line_b: int
    allocation_a: int
    backorder_a: int


@dataclass(frozen=True)
class Call:
    scope: Scope
    document: str
    variables: Callable[[World], dict[str, Any]] = lambda _: {}


def gid(kind: str, pk: int) -> str:
    return to_global_id(kind, pk)


ERRORS = "errors { code field message }"
CALLS: dict[str, Call] = {
    "node": Call(Scope.ORDERS_READ, "query($id: ID!) { node(id: $id) { id } }",
                 lambda w: {"id": gid("SalesOrder", w.order_a)}),
    "nodes": Call(Scope.INVENTORY_READ, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
                  lambda w: {"ids": [gid("Item", 1)]}),
    "salesOrder": Call(Scope.ORDERS_READ, '{ salesOrder(number: "A") { id } }'),
    "salesOrders": Call(Scope.ORDERS_READ, "{ salesOrders(first: 1) { totalCount } }"),
    "backorders": Call(Scope.ORDERS_READ, "{ backorders(first: 1) { totalCount } }"),
    "item": Call(Scope.INVENTORY_READ, '{ item(sku: "WIDGET") { id } }'),
    "items": Call(Scope.INVENTORY_READ, "{ items(first: 1) { totalCount } }"),
    "location": Call(Scope.INVENTORY_READ, '{ location(code: "BIN-1") { id } }'),
    "inventory": Call(Scope.INVENTORY_READ, "{ inventory(first: 1) { totalCount } }"),
    "movements": Call(Scope.INVENTORY_READ, "{ movements(first: 1) { totalCount } }"),
    "previewAllocation": Call(
        Scope.ORDERS_READ, "query($id: ID!) { previewAllocation(id: $id) { version } }",
        lambda w: {"id": gid("SalesOrder", w.order_b)},
    ),
    "availableToPromise": Call(
        Scope.INVENTORY_READ,
        '{ availableToPromise(sku: "WIDGET", locationCode: "BIN-1", lotNumber: "L1") '
        "{ promisable } }",
    ),
    "createItem": Call(
        Scope.INVENTORY_WRITE,
        f'mutation {{ createItem(input: {{sku: "NEW", name: "New"}}) {{ {ERRORS} }} }}',
    ),
    "createLocation": Call(
        Scope.INVENTORY_WRITE,
        f'mutation {{ createLocation(input: {{code: "BIN-9", name: "B"}}) {{ {ERRORS} }} }}',
    ),
    "adjustInventory": Call(
        Scope.INVENTORY_WRITE,
        "mutation { adjustInventory(input: {sku: \"WIDGET\", lotNumber: \"L2\", "
        f'locationCode: "BIN-1", quantity: 4}}) {{ {ERRORS} }} }}',
    ),
    "createSalesOrder": Call(
        Scope.ORDERS_WRITE,
        "mutation { createSalesOrder(input: {customer: \"C\", "
        f'lines: [{{sku: "WIDGET", quantity: 1}}]}}) {{ {ERRORS} }} }}',
    ),
    "addSalesOrderLine": Call(
        Scope.ORDERS_WRITE,
        "mutation($id: ID!) { addSalesOrderLine(salesOrderId: $id, sku: \"WIDGET\", "
        f"quantity: 2) {{ {ERRORS} }} }}",
        lambda w: {"id": gid("SalesOrder", w.order_b)},
    ),
    "updateSalesOrderLine": Call(
        Scope.ORDERS_WRITE,
        f"mutation($id: ID!) {{ updateSalesOrderLine(id: $id, quantity: 3) {{ {ERRORS} }} }}",
        lambda w: {"id": gid("SalesOrderLine", w.line_b)},
    ),
    "deleteSalesOrderLine": Call(
        Scope.ORDERS_WRITE,
        f"mutation($id: ID!) {{ deleteSalesOrderLine(id: $id) {{ {ERRORS} }} }}",
        lambda w: {"id": gid("SalesOrderLine", w.line_b)},
    ),
    "setSalesOrderPriority": Call(
        Scope.ORDERS_WRITE,
        f"mutation($id: ID!) {{ setSalesOrderPriority(id: $id, priority: 5) {{ {ERRORS} }} }}",
        lambda w: {"id": gid("SalesOrder", w.order_b)},
    ),
    "allocateOrder": Call(
        Scope.ALLOCATIONS_WRITE,
        f"mutation($id: ID!) {{ allocateOrder(id: $id) {{ {ERRORS} }} }}",
        lambda w: {"id": gid("SalesOrder", w.order_b)},
    ),
    "removeAllocationLines": Call(
        Scope.ALLOCATIONS_WRITE,
        f"mutation($ids: [ID!]!) {{ removeAllocationLines(ids: $ids) {{ {ERRORS} }} }}",
        lambda w: {"ids": [gid("Allocation", w.allocation_a)]},
    ),
    "fillBackorders": Call(
        Scope.ALLOCATIONS_WRITE,
        f'mutation {{ fillBackorders(sku: "WIDGET") {{ {ERRORS} }} }}',
    ),
    "packAllocatedOrder": Call(
        Scope.PACKING_WRITE,
        f"mutation($id: ID!) {{ packAllocatedOrder(id: $id) {{ {ERRORS} }} }}",
        lambda w: {"id": gid("SalesOrder", w.order_a)},
    ),
    "cancelBackorder": Call(
        Scope.BACKORDERS_WRITE,
        f"mutation($id: ID!) {{ cancelBackorder(id: $id) {{ {ERRORS} }} }}",
        lambda w: {"id": gid("Backorder", w.backorder_a)},
    ),
    "deleteBackorder": Call(
        Scope.BACKORDERS_WRITE,
        f"mutation($id: ID!) {{ deleteBackorder(id: $id) {{ {ERRORS} }} }}",
        lambda w: {"id": gid("Backorder", w.backorder_a)},
    ),
}  # fmt: skip


def sdl_root_fields() -> dict[str, set[str]]:
    schema = parse_sdl(SDL.read_text())
    assert schema.query_type is not None
    assert schema.mutation_type is not None
    return {
        "Query": set(schema.query_type.fields),
        "Mutation": set(schema.mutation_type.fields),
    }


def test_every_operation_of_the_sdl_has_a_scope_and_a_case_here() -> None:
    fields = sdl_root_fields()
    assert fields["Query"] == set(QUERY_SCOPES)
    assert fields["Mutation"] == set(MUTATION_SCOPES)
    assert fields["Query"] | fields["Mutation"] == set(CALLS)
    for name, scope in {**QUERY_SCOPES, **MUTATION_SCOPES}.items():
        assert scope is None or CALLS[name].scope is scope, name
    assert set(NODE_SCOPES.values()) == {Scope.ORDERS_READ, Scope.INVENTORY_READ}


def test_an_operation_added_without_a_scope_stops_the_schema_from_being_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    schema = build_schema()._schema
    monkeypatch.delitem(MUTATION_SCOPES, "allocateOrder")
    with pytest.raises(MissingScope, match="allocateOrder"):
        guard_root_fields(schema)


@pytest.fixture
async def world(uow: UnitOfWorkFactory, engine: AsyncEngine) -> World:
    """(engine: so that the tables are emptied first.)"""
    await helpers.one_balance(uow, 5)
    order_a = await helpers.order(uow, ("WIDGET", 8), number="A")
    result = await orders.allocate_order(uow, order_a)
    order_b = await helpers.order(uow, ("WIDGET", 1), number="B")
    async with uow() as u:
        a, b = await u.orders.get(order_a), await u.orders.get(order_b)
    assert a is not None
    assert b is not None
    assert a.backorders[0].id is not None
    assert b.lines[0].id is not None
    return World(order_a, order_b, b.lines[0].id, result.allocation_ids[0], a.backorders[0].id)


async def everything(engine: AsyncEngine) -> dict[str, list[tuple[Any, ...]]]:
    async with engine.connect() as conn:
        return {
            table.name: [
                tuple(row) for row in await conn.execute(text(f"SELECT * FROM {table.name}"))
            ]
            for table in Base.metadata.sorted_tables
        }


@pytest.fixture
def run(database: Database) -> Callable[[str, dict[str, Any], frozenset[Scope]], Any]:
    schema = build_schema()

    async def run_as(document: str, variables: dict[str, Any], scopes: frozenset[Scope]) -> Any:
        context = Context(database, credential=Credential("tester", scopes, "test:tester"))
        try:
            return await schema.execute(document, variables, context_value=context)
        finally:
            await context.close()

    return run_as


ALL_BUT = {scope: frozenset(Scope) - {scope, Scope.ADMIN} for scope in Scope}


@pytest.mark.parametrize("name", sorted(CALLS))
async def test_without_its_scope_an_operation_is_forbidden_and_changes_nothing(
    name: str, world: World, engine: AsyncEngine, run: Any
) -> None:
    call = CALLS[name]
    before = await everything(engine)

    result = await run(call.document, call.variables(world), ALL_BUT[call.scope])

    if name in MUTATION_SCOPES:
        assert result.errors is None, result.errors
        [error] = result.data[name]["errors"]
        assert (error["code"], error["field"]) == ("FORBIDDEN", None)
        assert call.scope.value in error["message"]
    else:
        [error] = result.errors
        assert (error.extensions["code"], error.path) == ("FORBIDDEN", [name])
        assert call.scope.value in error.message
    assert await everything(engine) == before


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("with_admin", [False, True])
async def test_with_its_scope_or_admin_an_operation_runs(
    name: str, with_admin: bool, world: World, run: Any
) -> None:
    call = CALLS[name]
    scopes = frozenset({Scope.ADMIN if with_admin else call.scope})

    result = await run(call.document, call.variables(world), scopes)

    assert result.errors is None, result.errors
    if name in MUTATION_SCOPES:
        assert result.data[name]["errors"] == []
    else:
        assert result.data[name] is not None


async def test_a_node_of_a_type_the_credential_may_not_read_is_forbidden(
    world: World, run: Any
) -> None:
    document = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
    ids = [gid("Item", 1), gid("SalesOrder", world.order_a)]

    inventory_only = await run(document, {"ids": ids}, frozenset({Scope.INVENTORY_READ}))
    both = await run(document, {"ids": ids}, frozenset(Scope) - {Scope.ADMIN})

    [error] = inventory_only.errors
    assert (error.extensions["code"], "orders:read" in error.message) == ("FORBIDDEN", True)
    assert both.errors is None
    assert [n["id"] for n in both.data["nodes"]] == ids
