"""Query limits: each is a setting, and a document over it is refused before it runs."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from graphql import parse
from strawberry.schema.schema import validate_document

from resolvers.queries import DEFAULT_PAGE
from schema import cost, execution
from schema.cost import cached_query_cost, query_cost
from schema.root import build_schema
from tests.conftest import AppClient

DEEP = "{ items { nodes { balances { lot { item { balances { location { code } } } } } } } }"


async def ask(http: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    body: dict[str, Any] = (
        await http.post("/graphql", json={"query": query, "variables": variables})
    ).json()
    return body


def messages(body: dict[str, Any]) -> str:
    return " ".join(error["message"] for error in body.get("errors", []))


async def test_a_document_nested_deeper_than_max_depth_is_refused(app_client: AppClient) -> None:
    async with app_client(max_depth=6) as http:
        refused = await ask(http, DEEP)
        assert "exceeds maximum operation depth" in messages(refused)
        assert refused.get("data") is None
    async with app_client(max_depth=12) as http:
        assert "errors" not in await ask(http, DEEP)


async def test_too_many_aliases_are_refused(app_client: AppClient) -> None:
    query = "{ " + " ".join(f"a{n}: items {{ totalCount }}" for n in range(5)) + " }"
    async with app_client(max_aliases=4) as http:
        assert "aliases found" in messages(await ask(http, query))
    async with app_client(max_aliases=5) as http:
        assert "errors" not in await ask(http, query)


async def test_too_many_tokens_are_refused(app_client: AppClient) -> None:
    query = "{ items { " + "totalCount " * 60 + "} }"
    async with app_client(max_tokens=50) as http:
        assert "token" in messages(await ask(http, query)).lower()
    async with app_client(max_tokens=500) as http:
        assert "errors" not in await ask(http, query)


async def test_the_cost_is_reported_and_a_costly_query_is_refused(app_client: AppClient) -> None:
    query = "query($n: Int) { items(first: $n) { nodes { sku balances { onHand } } } }"
    async with app_client(max_cost=100) as http:
        cheap = await ask(http, query, n=10)
        assert "errors" not in cheap
        # 1 for the connection + 10 nodes x (1 + 5 estimated balances)
        assert cheap["extensions"]["cost"] == {"requestedQueryCost": 61, "maximumAvailable": 100}

        costly = await ask(http, query, n=100)
        assert costly["data"] is None
        [error] = costly["errors"]
        assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
        assert error["extensions"]["cost"] == 601
        assert "601" in error["message"]


async def test_a_failed_cost_estimate_is_masked_and_logged(
    app_client: AppClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def failing(*_: Any) -> int:
        raise RuntimeError("a bug in the estimate")

    monkeypatch.setattr(cost, "cached_query_cost", failing)
    async with app_client() as http:
        refused = await ask(http, "{ items(first: 1) { totalCount } }")
    assert refused["data"] is None
    assert [error["message"] for error in refused["errors"]] == ["Unexpected error."]
    assert "a bug in the estimate" not in str(refused)
    [logged] = [r for r in caplog.records if r.getMessage() == "query cost estimate failed"]
    assert logged.levelname == "ERROR"
    assert logged.exc_info is not None


async def test_introspection_is_on_by_default_and_can_be_switched_off(
    app_client: AppClient,
) -> None:
    query = "{ __schema { queryType { name } } }"
    async with app_client() as http:
        assert (await ask(http, query))["data"]["__schema"]["queryType"]["name"] == "Query"
    async with app_client(introspection=False) as http:
        body = await ask(http, query)
        assert "introspection" in messages(body).lower()
        assert body.get("data") is None


def test_the_cost_model_counts_pages_lists_and_nodes() -> None:
    schema = build_schema()._schema

    def cost(query: str, **variables: Any) -> int:
        return query_cost(schema, parse(query), None, variables)

    assert cost("{ items { totalCount } }") == 1
    assert cost("{ items { nodes { sku } } }") == 1 + DEFAULT_PAGE
    assert cost("{ items(last: 3) { edges { node { sku } } } }") == 1 + 3 * (1 + 1)
    assert cost("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", ids=["a", "b"]) == 2
    fragment = "fragment F on Item { balances { onHand } } { items(first: 2) { nodes { ...F } } }"
    assert cost(fragment) == 1 + 2 * (1 + 5)
    assert cost('{ salesOrder(number: "x") { lines { item { sku } } } }') == 1 + 5 * 2


def test_the_cost_cannot_be_lowered_by_sizes_the_resolver_refuses_or_by_defaults() -> None:
    schema = build_schema()._schema

    def cost(query: str, **variables: Any) -> int:
        return query_cost(schema, parse(query), None, variables)

    costly = "b: salesOrders(first: 100) { nodes { lines { item { sku } } } }"
    assert cost("{ a: items(first: -1000000) { totalCount } " + costly + " }") >= cost(
        "{ " + costly + " }"
    )
    assert cost("{ items(first: -1000) { nodes { sku } } }") == 1 + 1000
    assert cost("query($n: Int = 100) { items(first: $n) { nodes { sku } } }") == 1 + 100
    assert cost("{ items(first: 0) { nodes { sku } } }") == 1
    # Only list fields multiply by their ids; a payload is one object.
    assert (
        cost(
            """mutation($ids: [ID!]!) { removeAllocationLines(ids: $ids) {
        salesOrder { number } } }""",
            ids=["a"] * 100,
        )
        == 2
    )


async def test_the_validation_cache_serves_a_repeated_document(
    app_client: AppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limits' rules are made once per schema; made per request, they would change
    the validation cache's key and every request would be validated again."""
    validated: list[object] = []

    def counting(*args: Any) -> Any:
        validated.append(args[1])
        return validate_document(*args)

    monkeypatch.setattr(execution, "validate_document", counting)
    query = "query($sku: String!) { item(sku: $sku) { sku name } }"
    async with app_client() as http:
        for sku in ("A", "B", "C"):
            await ask(http, query, sku=sku)
        await ask(http, "{ items(first: 1) { totalCount } }")
    assert len(validated) == 2  # once per document text, whatever the variables


def test_the_cost_is_worked_out_again_for_other_page_sizes_only() -> None:
    schema = build_schema()._schema
    document = parse(
        "query($n: Int, $id: ID!) { items(first: $n) { nodes { sku } } node(id: $id) { id } }"
    )

    def cost(**variables: Any) -> int:
        return cached_query_cost(schema, document, None, variables)

    assert cost(n=10, id="a") == cost(n=10, id="b") == 1 + 10 + 1
    assert cost(n=50, id="a") == 1 + 50 + 1
    assert cost(n=10, id="c") == 1 + 10 + 1
