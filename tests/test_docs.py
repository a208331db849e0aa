"""The docs under docs/ stay honest.

Every example document parses, validates against the live schema, takes only
variables, accepts the variables its header documents and costs what limits.md
says. The error-code table in api.md names every ErrorCode and every mutation, the
limits table in limits.md has each setting's variable and default, and the
GraphQL-level error messages api.md quotes are the server's. The examples also run
against a real server, from an empty database, with the results docs/ describes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    TypeInfo,
    TypeInfoVisitor,
    VariableNode,
    Visitor,
    parse,
    validate,
    visit,
)
from graphql.execution.values import get_variable_values

from resolvers.access import MUTATION_SCOPES, NODE_SCOPES, QUERY_SCOPES, Scope
from resolvers.ids import to_global_id
from resolvers.queries import DEFAULT_PAGE, MAX_PAGE
from schema.cost import query_cost
from schema.enums import ErrorCode
from schema.http import MAX_JSON_DEPTH
from schema.root import build_schema
from schema.settings import Settings
from services.demo import DEMO_ORDER, load_demo_data
from services.orders import MAX_LINES
from services.ports import UnitOfWorkFactory
from tests.conftest import GraphQLClient

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXAMPLES = DOCS / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.graphql"))
USES = ("spa", "partner", "explore")
ERROR_SELECTION = {"code", "field", "message", "currentVersion"}
GARBLED_ID = "bm90LWFuLWlk"  # base64 of "not-an-id"
# api.md's and limits.md's example of a refused document: it costs 23201.
COSTLY = (
    "{ salesOrders(first: 100) { edges { node { lines { allocations "
    "{ lot { item { balances { id } } } } backorders { id } } } } } }"
)


@cache
def live_schema() -> GraphQLSchema:
    return build_schema()._schema


def example(name: str) -> str:
    return (EXAMPLES / f"{name}.graphql").read_text()


def documented_variables(text: str) -> dict[str, Any]:
    found = re.search(r"^# Variables: (.+)$", text, re.MULTILINE)
    assert found, "the example has no `# Variables:` header line"
    variables: dict[str, Any] = json.loads(found.group(1))
    return variables


def operation_of(document: DocumentNode) -> OperationDefinitionNode:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    assert len(operations) == 1, "one operation per example file"
    return operations[0]


def selection_sets(document: DocumentNode) -> Iterator[SelectionSetNode]:
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
            yield definition.selection_set


def fields(selection_set: SelectionSetNode) -> Iterator[FieldNode]:
    """Every field at or below selection_set, fragment spreads left out."""
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection
            if selection.selection_set:
                yield from fields(selection.selection_set)
        elif isinstance(selection, InlineFragmentNode):
            yield from fields(selection.selection_set)


def depth(selection_set: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode]) -> int:
    """As the depth limit counts: a top-level field is at 0, fragments are inlined."""
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.selection_set:
                deepest = max(deepest, 1 + depth(selection.selection_set, fragments))
        elif isinstance(selection, InlineFragmentNode):
            deepest = max(deepest, depth(selection.selection_set, fragments))
        elif isinstance(selection, FragmentSpreadNode):
            deepest = max(deepest, depth(fragments[selection.name.value].selection_set, fragments))
    return deepest


def table_rows(markdown: str, heading: str) -> list[list[str]]:
    """The cells of the table rows in the section under heading (up to the next ##)."""
    section = markdown.split(heading, 1)[1].split("\n## ", 1)[0]
    return [
        [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| ---")
    ]


def api_md() -> str:
    return (DOCS / "api.md").read_text()


def limits_md() -> str:
    return (DOCS / "limits.md").read_text()


# -- the documents, statically ------------------------------------------------------


def test_there_are_examples_for_each_use_and_the_index_lists_them_all() -> None:
    names = [path.name for path in EXAMPLE_FILES]
    for use in USES:
        assert any(name.startswith(f"{use}-") for name in names), use
    assert all(name.split("-", 1)[0] in USES for name in names), names
    index = (DOCS / "README.md").read_text()
    for name in names:
        assert f"(examples/{name})" in index, f"docs/README.md does not link {name}"


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.name)
def test_an_example_parses_validates_and_takes_only_variables(path: Path) -> None:
    schema = live_schema()
    document = parse(path.read_text())
    assert validate(schema, document) == []

    operation = operation_of(document)
    assert operation.name is not None, "name the operation: logs and depth errors show it"
    literals = [
        f"{field.name.value}({argument.name.value})"
        for selection_set in selection_sets(document)
        for field in fields(selection_set)
        for argument in field.arguments or ()
        if not isinstance(argument.value, VariableNode)
    ]
    assert literals == [], "send values as variables, not literals"

    coerced = get_variable_values(
        schema, operation.variable_definitions or (), documented_variables(path.read_text())
    )
    assert not isinstance(coerced, list), [error.message for error in coerced]

    if operation.operation is OperationType.MUTATION:
        for field in fields(operation.selection_set):
            if field.name.value == "errors":
                assert field.selection_set is not None
                selected = {f.name.value for f in fields(field.selection_set)}
                assert selected == ERROR_SELECTION, selected
                break
        else:
            pytest.fail("a mutation example must select its payload's errors")


def missing_ids(document: DocumentNode, schema: GraphQLSchema) -> list[str]:
    """Each selection of an object that has an `id` but where the document does not
    select it (a normalizing client cache would go stale), as "Type at line L"."""
    found: list[str] = []
    type_info = TypeInfo(schema)
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }

    def selects_id(selection_set: SelectionSetNode, seen: frozenset[str]) -> bool:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode) and selection.name.value == "id":
                return True
            if isinstance(selection, InlineFragmentNode) and selects_id(
                selection.selection_set, seen
            ):
                return True
            if isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
                fragment = fragments[selection.name.value]
                if selects_id(fragment.selection_set, seen | {selection.name.value}):
                    return True
        return False

    class Ids(Visitor):
        def enter_selection_set(self, node: SelectionSetNode, *_: object) -> None:
            parent = type_info.get_parent_type()
            has_id = isinstance(parent, GraphQLObjectType | GraphQLInterfaceType) and (
                "id" in parent.fields
            )
            if has_id and parent is not None and not selects_id(node, frozenset()):
                line = node.loc.start_token.line if node.loc else "?"
                found.append(f"{parent.name} at line {line}")

    visit(document, TypeInfoVisitor(type_info, Ids()))
    return found


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.name)
def test_an_example_selects_id_on_every_object_that_has_one(path: Path) -> None:
    document = parse(path.read_text())

    assert missing_ids(document, live_schema()) == []


def test_the_id_check_finds_an_object_without_its_id() -> None:
    document = parse('{ salesOrder(number: "X") { id lines { lineNumber } } }')

    assert missing_ids(document, live_schema()) == ["SalesOrderLine at line 1"]


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.name)
def test_an_example_is_well_within_the_limits(path: Path) -> None:
    settings = Settings(_env_file=None)
    document = parse(path.read_text(), max_tokens=200)  # limits.md: fewer than 200 tokens
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    assert depth(operation_of(document).selection_set, fragments) <= 4  # limits.md: depth 4
    aliases = [f for s in selection_sets(document) for f in fields(s) if f.alias is not None]
    assert len(aliases) <= settings.max_aliases
    cost = query_cost(live_schema(), document, None, documented_variables(path.read_text()))
    assert 0 < cost <= settings.max_cost


def test_the_cost_figures_in_limits_md_are_what_the_estimate_computes() -> None:
    text = limits_md()
    documented = {
        row[0].strip("`"): int(row[1])
        for row in table_rows(text, "The examples cost this much")
        if row[0].endswith(".graphql`")
    }
    computed = {
        path.name: query_cost(
            live_schema(), parse(path.read_text()), None, documented_variables(path.read_text())
        )
        for path in EXAMPLE_FILES
    }
    assert documented == computed

    def cost(document: str, **variables: Any) -> int:
        return query_cost(live_schema(), parse(document), None, variables)

    assert "**146**" in text
    assert computed["spa-order-screen.graphql"] == 146
    assert "**42**" in text
    assert cost(example("spa-order-list"), first=20) == 42
    assert "it is 202" in text
    assert cost(example("spa-order-list"), first=100) == 202
    heavy = (
        "{ salesOrders(first: 100) { nodes { number lines "
        "{ allocations { lot { lotNumber } } } } } }"
    )
    assert heavy in text
    assert f"= {cost(heavy)}:" in text
    # A default in the document counts as the server will use it (limits.md says so).
    assert "variable defaults written in the document" in text
    assert cost("query($n: Int = 100) { items(first: $n) { nodes { sku } } }") == 1 + 100


# -- the tables ------------------------------------------------------------------------


def test_every_error_code_is_in_the_api_md_table_with_advice() -> None:
    rows = table_rows(api_md(), "## Errors in payloads")
    table = {row[0].strip("`"): row for row in rows if row[0].startswith("`")}
    assert set(table) == {code.value for code in ErrorCode}
    for code, row in table.items():
        assert len(row) == 4, f"{code}: the table has four columns"
        assert all(row), f"{code}: fill in all four columns"
    error_code = live_schema().get_type("ErrorCode")
    assert isinstance(error_code, GraphQLEnumType)
    assert set(error_code.values) == set(table), "the GraphQL enum and the table differ"

    mutation = live_schema().mutation_type
    assert mutation is not None
    returned_by = " ".join(row[1] for row in table.values())
    for name in mutation.fields:
        assert f"`{name}`" in returned_by, f"api.md's table never names {name}"


def test_the_scopes_table_in_access_md_is_what_the_server_checks() -> None:
    """Each scope's row names exactly the root fields, mutations and node types that
    resolvers/access.py gives it; admin's says it has them all."""
    section = (DOCS / "access.md").read_text().split("## Scopes", 1)[1].split("\n## ", 1)[0]
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| `")
    ]
    documented = {row[0].strip("`"): row[1:] for row in rows}
    assert set(documented) == {scope.value for scope in Scope}
    for scope in Scope:
        queries, mutations = documented[scope.value]
        if scope is Scope.ADMIN:
            assert queries == mutations == "all of the above"
            continue
        named = set(re.findall(r"`([^`]+)`", queries))
        assert named == {
            *(name for name, needs in QUERY_SCOPES.items() if needs is scope),
            *(kind for kind, needs in NODE_SCOPES.items() if needs is scope),
            *(("node", "nodes") if scope in NODE_SCOPES.values() else ()),
        }, scope
        assert set(re.findall(r"`([^`]+)`", mutations)) == {
            name for name, needs in MUTATION_SCOPES.items() if needs is scope
        }, scope


def test_the_limits_table_has_each_setting_with_its_variable_and_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = table_rows(limits_md(), "# Limits")
    settings = Settings(_env_file=None)
    limit_settings = [name for name in Settings.model_fields if name.startswith("max_")]
    assert len(limit_settings) >= 4
    for name in limit_settings:
        variable = name.upper()
        [row] = [row for row in rows if f"`{variable}`" in row[2]]
        assert row[1] == str(getattr(settings, name)), (variable, row)
        # The variable really sets it.
        monkeypatch.setenv(variable, "7")
        assert getattr(Settings(_env_file=None), name) == 7
    fixed = {row[0]: row[1] for row in rows}
    assert fixed["page size (`first`, `last`)"].startswith(f"{MAX_PAGE}, and {DEFAULT_PAGE} ")
    assert fixed["ids per `nodes` call"] == str(MAX_PAGE)
    assert fixed["lines per order"] == str(MAX_LINES)
    assert fixed["introspection"] == "on"
    assert fixed["JSON nesting"] == str(MAX_JSON_DEPTH)
    assert settings.introspection is True
    monkeypatch.setenv("INTROSPECTION", "false")
    assert Settings(_env_file=None).introspection is False


async def test_introspection_switched_off_gives_the_documented_message() -> None:
    closed = build_schema(Settings(_env_file=None, introspection=False))
    result = await closed.execute("{ __schema { queryType { name } } }")
    assert result.errors
    message = result.errors[0].message
    assert message.startswith("GraphQL introspection has been disabled")
    assert message in api_md()
    open_ = await closed.execute("{ __typename }")
    assert open_.errors is None
    assert open_.data == {"__typename": "Query"}


# -- the documents against a real server ---------------------------------------------


async def run(gql: GraphQLClient, name: str, **variables: Any) -> dict[str, Any]:
    """Runs an example document; asserts there were no GraphQL-level errors."""
    return await gql.data(example(name), **variables)


async def mutate(gql: GraphQLClient, name: str, field: str, **variables: Any) -> dict[str, Any]:
    """Runs an example mutation; asserts its payload has no errors."""
    payload: dict[str, Any] = (await run(gql, name, **variables))[field]
    assert payload["errors"] == [], payload["errors"]
    return payload


async def refused(gql: GraphQLClient, name: str, field: str, **variables: Any) -> dict[str, Any]:
    """Runs an example mutation that must fail; returns its one error."""
    payload: dict[str, Any] = (await run(gql, name, **variables))[field]
    [error] = payload["errors"]
    for key, value in payload.items():
        if key != "errors":
            assert value in (None, []), f"{key} should be empty on failure"
    assert isinstance(error, dict)
    return error


async def walkthrough_stock(gql: GraphQLClient) -> None:
    """SPEC section 2, step 1, through the partner examples."""
    item = documented_variables(example("partner-create-item"))["input"]
    created = await mutate(gql, "partner-create-item", "createItem", input=item)
    assert created["item"]["sku"] == "BRASS-SCREW"
    await mutate(
        gql,
        "partner-create-item",
        "createItem",
        input={"sku": "SELF-TAP-SCREW", "name": "Self-Tapping Screw"},
    )
    for sequence in (1, 2, 3):
        code = f"A-0{sequence}"
        location = {"code": code, "name": f"Aisle A bin {sequence}", "pickSequence": sequence}
        made = await mutate(gql, "partner-create-location", "createLocation", input=location)
        assert made["location"]["pickSequence"] == sequence
    for sku, lot, code, quantity, day in (
        ("BRASS-SCREW", "B1", "A-01", 15, 5),
        ("BRASS-SCREW", "B2", "A-02", 20, 10),
        ("SELF-TAP-SCREW", "S1", "A-03", 22, 5),
    ):
        received = await receive(gql, sku, lot, code, quantity, at=f"2026-01-{day:02d}T08:00:00Z")
        assert received["balance"]["onHand"] == quantity


async def receive(
    gql: GraphQLClient, sku: str, lot: str, code: str, quantity: int, *, at: str | None = None
) -> dict[str, Any]:
    adjustment = {"sku": sku, "lotNumber": lot, "locationCode": code, "quantity": quantity}
    return await mutate(
        gql,
        "partner-receive-stock",
        "adjustInventory",
        input={**adjustment, "reason": "receipt", "receivedAt": at},
    )


async def new_order(gql: GraphQLClient, number: str, *lines: tuple[str, int]) -> dict[str, Any]:
    created = await mutate(
        gql,
        "partner-create-order",
        "createSalesOrder",
        input={
            "customer": "Acme Fasteners",
            "number": number,
            "lines": [{"sku": sku, "quantity": quantity} for sku, quantity in lines],
        },
    )
    order: dict[str, Any] = created["salesOrder"]
    return order


def line(order: dict[str, Any], number: int) -> dict[str, Any]:
    [found] = [ln for ln in order["lines"] if ln["lineNumber"] == number]
    assert isinstance(found, dict)
    return found


async def test_the_graphiql_session_in_the_docs_readme(
    gql: GraphQLClient, uow: UnitOfWorkFactory
) -> None:
    assert await load_demo_data(uow)
    screen_text = example("spa-order-screen")
    body = await gql.post(screen_text, number=DEMO_ORDER)
    order = body["data"]["salesOrder"]
    assert (order["version"], order["status"], len(order["lines"])) == (1, "OPEN", 2)
    expected_cost = query_cost(live_schema(), parse(screen_text), None, {"number": DEMO_ORDER})
    assert body["extensions"]["cost"] == {
        "requestedQueryCost": expected_cost,
        "maximumAvailable": Settings(_env_file=None).max_cost,
    }

    variables = {"id": order["id"], "expectedVersion": order["version"]}
    allocated = await mutate(gql, "partner-allocate-order", "allocateOrder", **variables)
    picks = [
        (a["salesOrderLine"]["lineNumber"], a["lot"]["lotNumber"], a["quantity"])
        for a in allocated["allocations"]
    ]
    assert picks == [(1, "B1", 15), (1, "B2", 10), (2, "S1", 22)]
    [backorder] = line(allocated["salesOrder"], 2)["backorders"]
    assert (backorder["quantity"], backorder["status"]) == (3, "OPEN")

    again = await refused(gql, "partner-allocate-order", "allocateOrder", **variables)
    assert again == {
        "code": "VERSION_CONFLICT",
        "field": ["expectedVersion"],
        "message": "The sales order has changed; its current version is 2.",
        "currentVersion": 2,
    }
    # api.md: an allocateOrder with nothing to do changes nothing, not even the version.
    idle = await mutate(gql, "partner-allocate-order", "allocateOrder", id=order["id"])
    assert (idle["allocations"], idle["salesOrder"]["version"]) == ([], 2)


async def test_the_partner_examples_create_allocate_and_pack_an_order(gql: GraphQLClient) -> None:
    await walkthrough_stock(gql)
    order_input = documented_variables(example("partner-create-order"))["input"]
    created = await mutate(gql, "partner-create-order", "createSalesOrder", input=order_input)
    order = created["salesOrder"]
    assert (order["number"], order["version"], order["status"]) == ("PO-4711", 1, "OPEN")

    # A retried create with the partner's own number cannot make a second order.
    duplicate = await refused(gql, "partner-create-order", "createSalesOrder", input=order_input)
    assert (duplicate["code"], duplicate["field"]) == ("DUPLICATE", ["input", "number"])

    stale = await refused(
        gql, "partner-allocate-order", "allocateOrder", id=order["id"], expectedVersion=2
    )
    assert (stale["code"], stale["currentVersion"]) == ("VERSION_CONFLICT", 1)

    allocated = await mutate(
        gql, "partner-allocate-order", "allocateOrder",
        id=order["id"], expectedVersion=1, strategy="FEFO",
    )  # fmt: skip
    assert [
        (a["lot"]["lotNumber"], a["location"]["code"], a["quantity"])
        for a in allocated["allocations"]
    ] == [("B1", "A-01", 15), ("B2", "A-02", 10), ("S1", "A-03", 22)]
    order = allocated["salesOrder"]
    assert (order["version"], order["status"]) == (2, "PARTIALLY_ALLOCATED")
    assert line(order, 2)["quantityBackordered"] == 3

    packed = await mutate(
        gql, "partner-pack-order", "packAllocatedOrder", id=order["id"], expectedVersion=2
    )
    assert [(p["salesOrderLine"]["lineNumber"], p["quantity"]) for p in packed["packedLines"]] == [
        (1, 25),
        (2, 22),
    ]
    assert [
        [(a["quantity"], a["quantityPacked"]) for a in packed_line["allocations"]]
        for packed_line in packed["packedLines"]
    ] == [[(15, 15), (10, 10)], [(22, 22)]]
    assert (packed["salesOrder"]["version"], packed["salesOrder"]["status"]) == (
        3,
        "PARTIALLY_PACKED",
    )
    nothing = await refused(
        gql, "partner-pack-order", "packAllocatedOrder", id=order["id"], expectedVersion=3
    )
    assert (nothing["code"], nothing["field"]) == ("NOTHING_TO_PACK", ["id"])


async def test_the_partner_examples_read_and_receive_stock_and_fill_a_backorder(
    gql: GraphQLClient,
) -> None:
    await walkthrough_stock(gql)
    order = await new_order(gql, "PO-1", ("BRASS-SCREW", 25), ("SELF-TAP-SCREW", 25))
    await mutate(gql, "partner-allocate-order", "allocateOrder", id=order["id"])
    await mutate(gql, "partner-pack-order", "packAllocatedOrder", id=order["id"])

    brass = await run(gql, "partner-read-stock", sku="BRASS-SCREW", inStockOnly=True)
    stock = brass["inventory"]
    assert stock["totalCount"] == 1
    assert stock["pageInfo"]["hasNextPage"] is False
    [balance] = stock["nodes"]
    assert (balance["lot"]["lotNumber"], balance["location"]["code"]) == ("B2", "A-02")
    assert (balance["onHand"], balance["allocated"], balance["available"]) == (10, 0, 10)
    empty = await run(gql, "partner-read-stock", sku="SELF-TAP-SCREW", inStockOnly=True)
    assert empty["inventory"]["totalCount"] == 0
    everything = await run(gql, "partner-read-stock", inStockOnly=False, first=2)
    assert everything["inventory"]["totalCount"] == 3
    assert everything["inventory"]["pageInfo"]["hasNextPage"] is True

    receipt = documented_variables(example("partner-receive-stock"))["input"]
    received = await mutate(gql, "partner-receive-stock", "adjustInventory", input=receipt)
    assert (received["balance"]["onHand"], received["balance"]["lot"]["lotNumber"]) == (100, "S2")
    assert received["adjustment"]["quantity"] == 100

    refilled = await mutate(
        gql, "partner-allocate-order", "allocateOrder", id=order["id"], expectedVersion=3
    )
    assert [(a["lot"]["lotNumber"], a["quantity"]) for a in refilled["allocations"]] == [("S2", 3)]
    [backorder] = line(refilled["salesOrder"], 2)["backorders"]
    assert (backorder["status"], backorder["quantityAllocated"]) == ("ALLOCATED", 3)

    not_open = await refused(gql, "partner-cancel-backorder", "cancelBackorder", id=backorder["id"])
    assert (not_open["code"], not_open["field"]) == ("BACKORDER_NOT_OPEN", ["id"])

    write_off = {**receipt, "lotNumber": "B2", "sku": "BRASS-SCREW", "locationCode": "A-02"}
    too_much = await refused(
        gql, "partner-receive-stock", "adjustInventory", input={**write_off, "quantity": -11}
    )
    assert (too_much["code"], too_much["field"]) == ("INSUFFICIENT_STOCK", ["input", "quantity"])

    ledger = await run(gql, "partner-read-movements", filter={"sku": "SELF-TAP-SCREW"})
    moved = [
        (m["kind"], m["onHandDelta"], m["allocatedDelta"], m["balance"]["lot"]["lotNumber"])
        for m in ledger["movements"]["nodes"]
    ]
    assert moved == [  # newest first
        ("ALLOCATE", 0, 3, "S2"), ("RECEIPT", 100, 0, "S2"), ("PACK", -22, -22, "S1"),
        ("ALLOCATE", 0, 22, "S1"), ("RECEIPT", 22, 0, "S1"),
    ]  # fmt: skip
    assert ledger["movements"]["nodes"][1]["reason"] == receipt["reason"]


async def test_the_partner_examples_change_a_line_remove_allocations_and_cancel_a_backorder(
    gql: GraphQLClient,
) -> None:
    await walkthrough_stock(gql)
    order = await new_order(gql, "PO-2", ("BRASS-SCREW", 10))
    await mutate(gql, "partner-allocate-order", "allocateOrder", id=order["id"])
    brass = line(order, 1)

    below = await refused(
        gql, "partner-update-order-line", "updateSalesOrderLine", id=brass["id"], quantity=5
    )
    assert (below["code"], below["field"]) == ("QUANTITY_BELOW_ALLOCATED", ["quantity"])
    raised = await mutate(
        gql, "partner-update-order-line", "updateSalesOrderLine",
        id=brass["id"], quantity=40, expectedVersion=2,
    )  # fmt: skip
    assert raised["salesOrder"]["version"] == 3
    allocated = await mutate(
        gql, "partner-allocate-order", "allocateOrder", id=order["id"], expectedVersion=3
    )
    brass = line(allocated["salesOrder"], 1)
    assert (brass["quantityAllocated"], brass["quantityBackordered"]) == (35, 5)
    [backorder] = brass["backorders"]

    ids = [a["id"] for a in allocated["allocations"]]
    removed = await mutate(
        gql, "partner-remove-allocation-lines", "removeAllocationLines", ids=ids, expectedVersion=4
    )
    assert removed["removedIds"] == ids
    brass = line(removed["salesOrder"], 1)
    assert (brass["quantityAllocated"], brass["quantityBackordered"]) == (10, 5)
    unknown = await refused(
        gql, "partner-remove-allocation-lines", "removeAllocationLines", ids=[GARBLED_ID]
    )
    assert (unknown["code"], unknown["field"]) == ("NOT_FOUND", ["ids", "0"])

    cancelled = await mutate(
        gql, "partner-cancel-backorder", "cancelBackorder", id=backorder["id"], reason="too late"
    )
    assert (cancelled["backorder"]["status"], cancelled["backorder"]["cancelReason"]) == (
        "CANCELLED",
        "too late",
    )
    brass = line(cancelled["salesOrder"], 1)
    assert (brass["quantityCancelled"], brass["quantityBackordered"]) == (5, 0)
    assert cancelled["salesOrder"]["version"] == 6  # cancelling changes the version too


async def test_add_sales_order_line_names_the_fields_api_md_says(gql: GraphQLClient) -> None:
    """api.md's NOT_FOUND row: `salesOrderId` for a malformed or an unknown order id."""
    add = """mutation AddLine($order: ID!, $sku: String!, $quantity: Int!) {
      addSalesOrderLine(salesOrderId: $order, sku: $sku, quantity: $quantity) {
        salesOrder { id } errors { code field } } }"""
    fields_by_id = {}
    for order_id in (GARBLED_ID, to_global_id("SalesOrder", 999)):
        payload = (await gql.data(add, order=order_id, sku="X", quantity=1))["addSalesOrderLine"]
        [error] = payload["errors"]
        assert error["code"] == "NOT_FOUND"
        fields_by_id[order_id] = error["field"]
    assert fields_by_id == {
        GARBLED_ID: ["salesOrderId"],
        to_global_id("SalesOrder", 999): ["salesOrderId"],
    }
    assert "`addSalesOrderLine` (`salesOrderId`, `sku`)" in api_md()


async def test_the_spa_examples_page_both_ways_show_an_order_and_refetch_it(
    gql: GraphQLClient,
) -> None:
    await walkthrough_stock(gql)
    orders = [
        await new_order(gql, "SO-A", ("BRASS-SCREW", 1)),
        await new_order(gql, "SO-B", ("BRASS-SCREW", 40)),
        await new_order(gql, "SO-C", ("BRASS-SCREW", 1)),
        await new_order(gql, "SO-D", ("SELF-TAP-SCREW", 1)),
        await new_order(gql, "SO-E", ("BRASS-SCREW", 1)),
    ]
    for order in (orders[1], orders[3]):
        await mutate(gql, "partner-allocate-order", "allocateOrder", id=order["id"])
    await mutate(gql, "partner-pack-order", "packAllocatedOrder", id=orders[1]["id"])

    async def page(**variables: Any) -> dict[str, Any]:
        connection: dict[str, Any] = (
            await run(gql, "spa-order-list", filter={"status": "OPEN"}, **variables)
        )["salesOrders"]
        assert connection["totalCount"] == 3
        return connection

    def seen(connection: dict[str, Any]) -> tuple[list[str], bool, bool]:
        info = connection["pageInfo"]
        numbers = [edge["node"]["number"] for edge in connection["edges"]]
        return numbers, info["hasPreviousPage"], info["hasNextPage"]

    first = await page(first=2)
    assert seen(first) == (["SO-A", "SO-C"], False, True)
    second = await page(first=2, after=first["pageInfo"]["endCursor"])
    assert seen(second) == (["SO-E"], True, False)
    back = await page(last=2, before=second["pageInfo"]["startCursor"])
    assert seen(back) == (["SO-A", "SO-C"], False, True)
    assert seen(await page(last=2)) == (["SO-C", "SO-E"], True, False)

    screen = (await run(gql, "spa-order-screen", number="SO-B"))["salesOrder"]
    assert (screen["status"], screen["version"]) == ("PARTIALLY_PACKED", 3)
    brass = line(screen, 1)
    assert [
        (
            a["name"],
            a["lot"]["lotNumber"],
            a["location"]["code"],
            a["quantity"],
            a["quantityPacked"],
        )
        for a in brass["allocations"]
    ] == [("AL-000001", "B1", "A-01", 15, 15), ("AL-000002", "B2", "A-02", 20, 20)]
    assert [(b["quantityRemaining"], b["status"]) for b in brass["backorders"]] == [(5, "OPEN")]
    [packed] = screen["packedLines"]
    assert packed["quantity"] == 35
    assert [a["name"] for a in packed["allocations"]] == ["AL-000001", "AL-000002"]

    node = (await run(gql, "spa-refetch-node", id=screen["id"]))["node"]
    assert (node["__typename"], node["number"], node["version"]) == ("SalesOrder", "SO-B", 3)
    backorder = (await run(gql, "spa-refetch-node", id=brass["backorders"][0]["id"]))["node"]
    assert (backorder["__typename"], backorder["backorderStatus"]) == ("Backorder", "OPEN")
    assert (await run(gql, "spa-refetch-node", id=GARBLED_ID))["node"] is None


async def test_the_exploration_examples(gql: GraphQLClient) -> None:
    await walkthrough_stock(gql)
    order = await new_order(gql, "SO-X", ("SELF-TAP-SCREW", 25))
    allocated = await mutate(gql, "partner-allocate-order", "allocateOrder", id=order["id"])
    [backorder] = line(allocated["salesOrder"], 1)["backorders"]

    items = (await run(gql, "explore-items-with-availability", first=20))["items"]
    assert items["totalCount"] == 2
    availability = {
        item["sku"]: (item["onHand"], item["allocated"], item["available"])
        for item in items["nodes"]
    }
    assert availability == {"BRASS-SCREW": (35, 0, 35), "SELF-TAP-SCREW": (22, 22, 0)}
    brass = next(item for item in items["nodes"] if item["sku"] == "BRASS-SCREW")
    assert [(b["lot"]["lotNumber"], b["available"]) for b in brass["balances"]] == [
        ("B1", 15),
        ("B2", 20),
    ]

    backorders = (await run(gql, "explore-open-backorders", status="OPEN", first=20))["backorders"]
    assert backorders["totalCount"] == 1
    [found] = backorders["nodes"]
    assert (found["id"], found["quantityRemaining"], found["salesOrder"]["number"]) == (
        backorder["id"],
        3,
        "SO-X",
    )
    item = found["salesOrderLine"]["item"]
    assert (item["sku"], item["available"]) == ("SELF-TAP-SCREW", 0)
    none_allocated = await run(gql, "explore-open-backorders", status="ALLOCATED")
    assert none_allocated["backorders"]["totalCount"] == 0

    ids = [order["id"], to_global_id("Item", 1), to_global_id("Location", 1), GARBLED_ID]
    nodes = (await run(gql, "explore-nodes-by-ids", ids=[*ids, backorder["id"]]))["nodes"]
    assert [n and n["__typename"] for n in nodes] == [
        "SalesOrder",
        "Item",
        "Location",
        None,
        "Backorder",
    ]
    assert (nodes[0]["number"], nodes[1]["sku"], nodes[2]["code"]) == (
        "SO-X",
        "BRASS-SCREW",
        "A-01",
    )


async def test_the_planning_examples_preview_an_allocation_and_tell_what_can_be_promised(
    gql: GraphQLClient,
) -> None:
    await walkthrough_stock(gql)
    order = await new_order(gql, "PO-9", ("BRASS-SCREW", 25), ("SELF-TAP-SCREW", 25))

    preview = (await run(gql, "spa-preview-allocation", id=order["id"]))["previewAllocation"]
    assert (preview["version"], preview["salesOrder"]["status"]) == (1, "OPEN")
    assert [
        (ln["salesOrderLine"]["lineNumber"], ln["shortfall"], ln["skipped"],
         [(a["lot"]["lotNumber"], a["location"]["code"], a["quantity"])
          for a in ln["allocations"]])
        for ln in preview["lines"]
    ] == [
        (1, 0, None, [("B1", "A-01", 15), ("B2", "A-02", 10)]),
        (2, 3, None, [("S1", "A-03", 22)]),
    ]  # fmt: skip
    tap = await run(gql, "partner-available-to-promise", sku="SELF-TAP-SCREW")
    assert tap["availableToPromise"]["promisable"] == 22  # the preview promised nothing

    allocated = await mutate(
        gql, "partner-allocate-order", "allocateOrder",
        id=order["id"], expectedVersion=preview["version"], strategy="FEFO",
    )  # fmt: skip
    assert [
        (a["lot"]["lotNumber"], a["location"]["code"], a["quantity"])
        for a in allocated["allocations"]
    ] == [("B1", "A-01", 15), ("B2", "A-02", 10), ("S1", "A-03", 22)]
    assert line(allocated["salesOrder"], 2)["quantityBackordered"] == 3

    def figures(found: dict[str, Any]) -> tuple[int, ...]:
        names = ("onHand", "allocated", "available", "openBackorderQuantity", "promisable")
        return tuple(found[name] for name in names)

    brass = await run(gql, "partner-available-to-promise", sku="BRASS-SCREW")
    tap = await run(gql, "partner-available-to-promise", sku="SELF-TAP-SCREW")
    assert figures(brass["availableToPromise"]) == (35, 25, 10, 0, 10)
    assert figures(tap["availableToPromise"]) == (22, 22, 0, 3, -3)
    assert [
        (s["location"]["code"], s["onHand"], s["available"])
        for s in brass["availableToPromise"]["byLocation"]
    ] == [("A-01", 15, 0), ("A-02", 20, 10)]
    assert [s["lot"]["lotNumber"] for s in brass["availableToPromise"]["byLot"]] == ["B1", "B2"]
    at_a02 = await run(gql, "partner-available-to-promise", sku="BRASS-SCREW", locationCode="A-02")
    assert figures(at_a02["availableToPromise"]) == (20, 10, 10, 0, 10)


# -- the GraphQL-level errors api.md quotes --------------------------------------------


def chain(name: str, depth_of_leaf: int) -> str:
    """A query named name whose deepest field sits at depth_of_leaf."""
    path = ["inventory(first: 1)", "nodes"]
    while len(path) < depth_of_leaf:
        path.append("item" if len(path) % 2 == 0 else "balances")
    body = "id"
    for field in reversed(path):
        body = f"{field} {{ {body} }}"
    return f"query {name} {{ {body} }}"


async def test_the_graphql_level_errors_are_the_ones_api_md_quotes(gql: GraphQLClient) -> None:
    order_list = example("spa-order-list")
    many_ids = [GARBLED_ID] * (MAX_PAGE + 1)
    aliases = "{ " + " ".join(f"a{n}: item(sku: $sku) {{ id }}" for n in range(31)) + " }"
    cases: list[tuple[str, dict[str, Any], str, str | None]] = [
        (order_list, {"first": 101}, "first must be between 0 and 100.", "INVALID_INPUT"),
        (order_list, {"first": 1, "last": 1}, "Give first or last, not both.", "INVALID_INPUT"),
        (
            order_list,
            {"after": GARBLED_ID},
            "That is not a cursor this connection gave out.",
            "INVALID_INPUT",
        ),
        (example("explore-nodes-by-ids"), {"ids": many_ids}, "At most 100 ids.", "INVALID_INPUT"),
        (
            COSTLY,
            {},
            "Query cost 23201 exceeds the maximum of 20000: ask for smaller pages or fewer "
            "nested fields.",
            "QUERY_TOO_COSTLY",
        ),
        (
            chain("OrderScreen", 13),
            {},
            "'OrderScreen' exceeds maximum operation depth of 12",
            None,
        ),
        ("query($sku: String!) " + aliases, {"sku": "X"}, "31 aliases found. Allowed: 30", None),
        (
            "{ " + "__typename " * 5000 + "}",
            {},
            "Syntax Error: Document contains more than 5000 tokens. Parsing aborted.",
            None,
        ),
        (
            "{ items { nope } }",
            {},
            "Cannot query field 'nope' on type 'ItemConnection'. Did you mean 'nodes'?",
            None,
        ),
    ]
    documented = api_md()
    for query, variables, message, code in cases:
        body = await gql.post(query, **variables)
        assert body.get("data") is None, (message, body)
        [error] = body["errors"]
        assert error["message"] == message
        assert error.get("extensions", {}).get("code") == code
        assert message in documented, f"api.md does not quote {message!r}"

    too_costly = await gql.post(COSTLY)
    assert too_costly["errors"][0]["extensions"] == {
        "code": "QUERY_TOO_COSTLY",
        "cost": 23201,
        "maximumCost": 20000,
    }
    assert too_costly["extensions"]["cost"] == {
        "requestedQueryCost": 23201,
        "maximumAvailable": 20000,
    }
    assert '"requestedQueryCost": 23201' in limits_md()

    # Depth 12 is allowed: limits.md says a field at depth 13 or more is refused.
    assert "errors" not in await gql.post(chain("Deep", 12))

    no_key = await gql.post("query NoKey { salesOrder { id } }")
    assert no_key["data"] == {"salesOrder": None}
    assert no_key["errors"][0]["message"] == "Give the sales order's id or its number."


def test_a_document_over_max_tokens_fails_to_parse_as_limits_md_says() -> None:
    """Comments count as tokens: limits.md warns about it."""
    commented = "\n".join(["# a comment"] * 10) + "\n{ __typename }"
    with pytest.raises(GraphQLSyntaxError, match="more than 12 tokens"):
        parse(commented, max_tokens=12)
    assert parse(commented, max_tokens=13).definitions
    assert "**Comments count too**" in limits_md()


async def test_the_status_codes_api_md_describes(gql: GraphQLClient) -> None:
    item = {"sku": "A", "name": "A"}
    params = {"query": example("partner-create-item"), "variables": json.dumps({"input": item})}
    over_get = await gql.http.get("/graphql", params=params)
    assert (over_get.status_code, over_get.headers["allow"]) == (405, "POST")
    created = await gql.post(example("partner-create-item"), input=item)
    assert created["data"]["createItem"]["errors"] == []  # the GET ran nothing: no DUPLICATE

    for accept, status in ((None, 200), ("application/graphql-response+json", 400)):
        response = await gql.http.post(
            "/graphql", json={"query": COSTLY}, headers={"accept": accept} if accept else {}
        )
        assert response.status_code == status
        body = response.json()
        assert ("data" in body) is (accept is None)
        assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert "HTTP 405 and `Allow: POST`" in api_md()
    assert "HTTP 400 and no `data` entry" in api_md()


async def test_the_priority_and_fill_examples_serve_the_most_urgent_order_first(
    gql: GraphQLClient,
) -> None:
    await walkthrough_stock(gql)
    taken = await new_order(gql, "PO-A", ("SELF-TAP-SCREW", 22))
    await mutate(gql, "partner-allocate-order", "allocateOrder", id=taken["id"])
    waiting = {}
    for number in ("PO-B", "PO-C"):
        order = await new_order(gql, number, ("SELF-TAP-SCREW", 5))
        await mutate(gql, "partner-allocate-order", "allocateOrder", id=order["id"])
        waiting[number] = order["id"]

    urgent = await mutate(
        gql, "partner-set-order-priority", "setSalesOrderPriority",
        id=waiting["PO-C"], priority=10, expectedVersion=2,
    )  # fmt: skip
    assert (urgent["salesOrder"]["priority"], urgent["salesOrder"]["version"]) == (10, 3)
    stale = await refused(
        gql, "partner-set-order-priority", "setSalesOrderPriority",
        id=waiting["PO-C"], priority=1, expectedVersion=2,
    )  # fmt: skip
    assert (stale["code"], stale["currentVersion"]) == ("VERSION_CONFLICT", 3)

    documented = documented_variables(example("spa-orders-by-priority"))
    only_urgent = (await run(gql, "spa-orders-by-priority", **documented))["salesOrders"]
    assert [e["node"]["number"] for e in only_urgent["edges"]] == ["PO-C"]
    first = (await run(gql, "spa-orders-by-priority", orderBy="PRIORITY", first=2))["salesOrders"]
    assert [e["node"]["number"] for e in first["edges"]] == ["PO-C", "PO-A"]
    after = first["pageInfo"]["endCursor"]
    rest = await run(gql, "spa-orders-by-priority", orderBy="PRIORITY", first=2, after=after)
    assert [e["node"]["number"] for e in rest["salesOrders"]["edges"]] == ["PO-B"]

    receipt = documented_variables(example("partner-receive-stock"))["input"]
    await mutate(gql, "partner-receive-stock", "adjustInventory", input=receipt)
    fill = documented_variables(example("partner-fill-backorders"))
    filled = await mutate(gql, "partner-fill-backorders", "fillBackorders", **fill)
    assert [
        (b["salesOrder"]["number"], b["status"], b["quantityAllocated"])
        for b in filled["backorders"]
    ] == [("PO-C", "ALLOCATED", 5), ("PO-B", "ALLOCATED", 5)]
    assert [(a["lot"]["lotNumber"], a["quantity"]) for a in filled["allocations"]] == [
        ("S2", 5), ("S2", 5),
    ]  # fmt: skip
    unknown = await refused(gql, "partner-fill-backorders", "fillBackorders", sku="NOPE")
    assert (unknown["code"], unknown["field"]) == ("NOT_FOUND", ["sku"])
