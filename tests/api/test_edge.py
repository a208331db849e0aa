"""SPEC 7's edge, in-process over HTTP: JSON nesting."""

from __future__ import annotations

import httpx
import pytest

from schema.http import GRAPHQL_RESPONSE_JSON, JSON, MAX_JSON_DEPTH


def nested(depth: int) -> str:
    """A JSON array `depth` levels deep."""
    return "[" * depth + "]" * depth


def body_of_depth(depth: int) -> str:
    """A POST body nested `depth` levels deep: itself, `variables`, then arrays."""
    return '{"query": "{ __typename }", "variables": {"a": ' + nested(depth - 2) + "}}"


# -- JSON nesting --------------------------------------------------------------------------------


async def post_raw(http: httpx.AsyncClient, body: str, accept: str = JSON) -> httpx.Response:
    return await http.post(
        "/graphql", content=body, headers={"content-type": "application/json", "accept": accept}
    )


def assert_too_deep(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "JSON_TOO_DEEP"}
    assert f"deeper than {MAX_JSON_DEPTH} levels" in error["message"]


async def test_a_body_nested_64_deep_is_served(client: httpx.AsyncClient) -> None:
    response = await post_raw(client, body_of_depth(64))

    assert response.status_code == 200
    assert response.json()["data"] == {"__typename": "Query"}


@pytest.mark.parametrize("depth", [65, 1000, 100_000])
@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE_JSON])
async def test_a_body_nested_deeper_than_64_gets_400(
    client: httpx.AsyncClient, depth: int, accept: str
) -> None:
    response = await post_raw(client, body_of_depth(depth), accept)

    assert_too_deep(response)
    assert response.headers["content-type"] == accept


async def test_a_bare_array_nested_100000_deep_gets_400(client: httpx.AsyncClient) -> None:
    assert_too_deep(await post_raw(client, nested(100_000)))


@pytest.mark.parametrize("parameter", ["variables", "extensions"])
@pytest.mark.parametrize("depth", [65, 10_000])
async def test_get_parameters_nested_deeper_than_64_get_400(
    client: httpx.AsyncClient, parameter: str, depth: int
) -> None:
    value = '{"a": ' + nested(depth - 1) + "}"
    response = await client.get("/graphql", params={"query": "{ __typename }", parameter: value})

    assert_too_deep(response)


async def test_get_variables_nested_64_deep_are_served(client: httpx.AsyncClient) -> None:
    value = '{"a": ' + nested(63) + "}"
    response = await client.get("/graphql", params={"query": "{ __typename }", "variables": value})

    assert response.status_code == 200
    assert response.json()["data"] == {"__typename": "Query"}


async def test_deeply_nested_variables_no_longer_reach_the_cost_estimate(
    client: httpx.AsyncClient,
) -> None:
    """Ids nested 500 deep made the cost estimate recurse too far: "Unexpected error."."""
    query = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
    ids = "[" * 500 + '"x"' + "]" * 500
    response = await post_raw(client, f'{{"query": "{query}", "variables": {{"ids": {ids}}}}}')

    assert_too_deep(response)
