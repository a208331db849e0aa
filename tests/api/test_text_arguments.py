"""No odd text past the edge (SPEC section 7): every text argument and text input field
of every operation of the live schema has a length limit and refuses control
characters, as INVALID_INPUT naming the field, and nothing is written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    Undefined,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from resolvers.arguments import LIMITS, MULTILINE, OTHER_TEXT
from schema.root import build_schema
from tests.conftest import GraphQLClient

SCHEMA = build_schema()._schema


def _unwrap(kind: GraphQLInputType) -> GraphQLInputType:
    return kind.of_type if isinstance(kind, GraphQLNonNull) else kind


def filler(kind: GraphQLInputType) -> Any:
    """A value of the type that is valid for GraphQL (the server may still refuse it)."""
    kind = _unwrap(kind)
    if isinstance(kind, GraphQLList):
        return [filler(kind.of_type)]
    if isinstance(kind, GraphQLEnumType):
        return next(iter(kind.values))
    if isinstance(kind, GraphQLInputObjectType):  # every field, so any can be made odd
        return {n: filler(f.type) for n, f in kind.fields.items()}
    assert isinstance(kind, GraphQLScalarType)
    return {"Int": 1, "Boolean": False, "DateTime": "2026-01-01T00:00:00Z"}.get(kind.name, "A")


def _required(field: GraphQLArgument | GraphQLInputField) -> bool:
    return isinstance(field.type, GraphQLNonNull) and field.default_value is Undefined


def text_places(
    name: str, kind: GraphQLInputType, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every text spot below an argument: its path (list elements at index 0) and the
    name its limit goes by."""
    kind = _unwrap(kind)
    if isinstance(kind, GraphQLList):
        yield from text_places(name, kind.of_type, (*path, "0"))
    elif isinstance(kind, GraphQLInputObjectType):
        for field_name, field in kind.fields.items():
            yield from text_places(field_name, field.type, (*path, field_name))
    elif isinstance(kind, GraphQLScalarType) and kind.name in ("String", "ID"):
        yield path, name


def cases() -> Iterator[tuple[str, str, tuple[str, ...], str]]:
    for operation, root in (("query", SCHEMA.query_type), ("mutation", SCHEMA.mutation_type)):
        assert root is not None
        for field_name, field in root.fields.items():
            for argument_name, argument in field.args.items():
                for path, name in text_places(argument_name, argument.type, (argument_name,)):
                    yield operation, field_name, path, name


CASES = list(cases())


def put(value: Any, path: tuple[str, ...], text_value: str) -> Any:
    if not path:
        return text_value
    head, *rest = path
    if isinstance(value, list):
        return [put(value[0], tuple(rest), text_value)]
    return (
        {**value, head: put(value.get(head), tuple(rest), text_value)}
        if rest
        else {**value, head: text_value}
    )


def document(operation: str, field_name: str, also: str) -> tuple[str, dict[str, Any]]:
    """The operation with its required arguments and `also` as variables, and valid
    fillers for them."""
    root = SCHEMA.query_type if operation == "query" else SCHEMA.mutation_type
    assert root is not None
    field = root.fields[field_name]
    given = {n: a for n, a in field.args.items() if _required(a) or n == also}
    variables = {name: filler(arg.type) for name, arg in given.items()}
    declared = ", ".join(f"${name}: {arg.type}" for name, arg in given.items())
    passed = ", ".join(f"{name}: ${name}" for name in given)
    selection = "{ __typename }" if operation == "query" else "{ errors { code field message } }"
    return f"{operation}({declared}) {{ {field_name}({passed}) {selection} }}", variables


def test_the_walk_finds_text_in_arguments_and_inputs_of_queries_and_mutations() -> None:
    found = {(field, path) for _, field, path, _ in CASES}
    assert ("createSalesOrder", ("input", "lines", "0", "sku")) in found
    assert ("adjustInventory", ("input", "reason")) in found
    assert ("item", ("sku",)) in found
    assert ("salesOrders", ("after",)) in found
    assert ("removeAllocationLines", ("ids", "0")) in found


async def tables(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        counts = await conn.execute(
            text("SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM locations),"
                 " (SELECT count(*) FROM sales_orders), (SELECT count(*) FROM lots)")
        )  # fmt: skip
        return list(counts.one())


@pytest.mark.parametrize(
    ("operation", "field_name", "path", "name"),
    CASES,
    ids=[f"{f}.{'.'.join(p)}" for _, f, p, _ in CASES],
)
@pytest.mark.parametrize("odd", ["too long", "NUL"])
async def test_odd_text_anywhere_is_invalid_input_naming_the_field(  # noqa: PLR0917
    gql: GraphQLClient,
    engine: AsyncEngine,
    operation: str,
    field_name: str,
    path: tuple[str, ...],
    name: str,
    odd: str,
) -> None:
    limit = LIMITS.get(name, OTHER_TEXT)
    value = {
        "too long": "x" * (limit + 1),
        "NUL": "a\x00b",
    }[odd]
    query, variables = document(operation, field_name, path[0])
    variables[path[0]] = put(variables.get(path[0], {}), path[1:], value)
    before = await tables(engine)

    body = await gql.post(query, **variables)

    if operation == "mutation":
        [error] = body["data"][field_name]["errors"]
        assert (error["code"], error["field"]) == ("INVALID_INPUT", list(path)), error
    else:
        [error] = body["errors"]
        assert error.get("extensions") == {"code": "INVALID_INPUT", "field": list(path)}, error
        assert error["path"] == [field_name]
    assert await tables(engine) == before


async def test_a_lone_surrogate_is_refused_before_anything_runs(
    gql: GraphQLClient, engine: AsyncEngine
) -> None:
    in_document = await gql.post(
        'mutation { createItem(input: {sku: "a\\ud800b", name: "N"}) { errors { code field } } }'
    )
    in_json = await gql.http.post(
        "/graphql",
        content=json.dumps(
            {"query": "query($s: String!) { item(sku: $s) { sku } }", "variables": {"s": "\ud800"}}
        ),
        headers={"content-type": "application/json"},
    )

    # Neither reaches a resolver: graphql-core's lexer and the JSON decoder refuse it.
    assert in_document["data"] is None
    assert "Invalid Unicode escape" in in_document["errors"][0]["message"]
    assert in_json.status_code == 400
    assert await tables(engine) == [0, 0, 0, 0]


async def test_a_reason_may_hold_tabs_and_newlines_and_a_text_its_full_length(
    gql: GraphQLClient,
) -> None:
    await gql.data('mutation { createItem(input: {sku: "S", name: "S"}) { errors { code } } }')
    await gql.data('mutation { createLocation(input: {code: "L", name: "L"}) { errors { code } } }')
    payload = (
        await gql.data(
            """mutation($reason: String!, $lot: String!) { adjustInventory(input: {sku: "S",
               lotNumber: $lot, locationCode: "L", quantity: 3, reason: $reason}) {
               adjustment { reason } errors { code } } }""",
            reason="damaged\tpallet\n" + "é" * (LIMITS["reason"] - 15),
            lot="L" * LIMITS["lotNumber"],
        )
    )["adjustInventory"]
    assert payload["errors"] == []
    assert len(payload["adjustment"]["reason"]) == LIMITS["reason"]
    assert "reason" in MULTILINE
    refused = (
        await gql.data(
            """mutation { adjustInventory(input: {sku: "S", lotNumber: "L1", locationCode: "L",
               quantity: 3, reason: "a\\rb"}) { errors { code field } } }"""
        )
    )["adjustInventory"]
    assert refused["errors"] == [{"code": "INVALID_INPUT", "field": ["input", "reason"]}]


async def test_more_than_100_ids_are_refused_before_any_is_read(gql: GraphQLClient) -> None:
    ids = ["garbled"] * 101
    removal = await gql.data(
        "mutation($ids: [ID!]!) { removeAllocationLines(ids: $ids) { errors { code field } } }",
        ids=ids,
    )
    nodes = await gql.post("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", ids=ids)

    assert removal["removeAllocationLines"]["errors"] == [
        {"code": "INVALID_INPUT", "field": ["ids"]}
    ]
    assert nodes["errors"][0]["extensions"] == {"code": "INVALID_INPUT", "field": ["ids"]}
