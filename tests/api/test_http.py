"""GraphQL over HTTP: methods, media types, status codes, and GraphiQL from this server.

The graphql-http audit (.ci/graphql-http-audit.mjs) checks the same against a live
server in CI; these tests run in-process and pin this server's own choices.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from schema.app import create_app
from schema.http import ASSETS_PATH, GRAPHQL_RESPONSE_JSON, JSON, negotiate
from schema.settings import Settings
from services import orders

JSON_ONLY = {"accept": JSON}
GRAPHQL_RESPONSE = {"accept": GRAPHQL_RESPONSE_JSON}
HTML = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}  # a browser's
CREATE_ITEM = 'mutation { createItem(input: {sku: "BOLT", name: "Bolt"}) { item { sku } } }'
ITEM = "query($sku: String!) { item(sku: $sku) { sku name } }"
# Requests that fail before execution: no data to return.
REQUEST_ERRORS = {
    "parse": {"query": "{"},
    "validation": {"query": "{ noSuchField }"},
    "variable coercion": {"query": "query($id: ID!) { node(id: $id) { id } }", "variables": {}},
}


def content_type(response: httpx.Response) -> str:
    return response.headers["content-type"].partition(";")[0].strip()


async def post(
    client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post("/graphql", json=body, headers=headers or {})


# -- methods -------------------------------------------------------------------------------------


async def test_a_query_over_get_runs(client: httpx.AsyncClient) -> None:
    await post(client, {"query": CREATE_ITEM})

    response = await client.get(
        "/graphql",
        params={"query": ITEM, "variables": '{"sku": "BOLT"}'},
        headers=JSON_ONLY,
    )

    assert response.status_code == 200
    assert content_type(response) == JSON
    assert response.json()["data"] == {"item": {"sku": "BOLT", "name": "Bolt"}}


@pytest.mark.parametrize("accept", [JSON_ONLY, GRAPHQL_RESPONSE, {}])
async def test_a_mutation_over_get_is_refused_with_405_and_does_not_run(
    client: httpx.AsyncClient, accept: dict[str, str]
) -> None:
    response = await client.get("/graphql", params={"query": CREATE_ITEM}, headers=accept)

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "data" not in response.json()
    assert response.json()["errors"][0]["message"].startswith("Mutations are not allowed over GET")
    after = await post(client, {"query": ITEM, "variables": {"sku": "BOLT"}})
    assert after.json()["data"] == {"item": None}


async def test_a_mutation_over_post_with_json_runs(client: httpx.AsyncClient) -> None:
    response = await post(client, {"query": CREATE_ITEM}, JSON_ONLY)

    assert response.status_code == 200
    assert content_type(response) == JSON
    assert response.json()["data"] == {"createItem": {"item": {"sku": "BOLT"}}}


async def test_other_methods_are_refused_with_405(client: httpx.AsyncClient) -> None:
    for method in ("PUT", "DELETE", "PATCH", "HEAD"):
        response = await client.request(method, "/graphql", json={"query": "{ __typename }"})
        assert response.status_code == 405, method
        assert response.headers["allow"] == "GET, POST"
        if method != "HEAD":
            assert "data" not in response.json()
            assert response.json()["errors"][0]["message"]


# -- application/graphql-response+json ----------------------------------------------------------


async def test_graphql_response_json_is_used_when_asked_for(client: httpx.AsyncClient) -> None:
    response = await post(client, {"query": "{ __typename }"}, GRAPHQL_RESPONSE)

    assert response.status_code == 200
    assert content_type(response) == GRAPHQL_RESPONSE_JSON
    assert response.headers["vary"].startswith("Accept")
    assert response.json()["data"] == {"__typename": "Query"}


@pytest.mark.parametrize("body", REQUEST_ERRORS.values(), ids=REQUEST_ERRORS.keys())
async def test_graphql_response_json_gives_400_and_no_data_when_the_request_fails(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await post(client, body, GRAPHQL_RESPONSE)

    assert response.status_code == 400
    assert content_type(response) == GRAPHQL_RESPONSE_JSON
    assert "data" not in response.json()
    assert response.json()["errors"]


async def test_graphql_response_json_gives_400_for_a_query_over_a_limit(
    client: httpx.AsyncClient,
) -> None:
    aliases = " ".join(f"a{n}: __typename" for n in range(40))  # the limit is 30
    response = await post(client, {"query": f"{{ {aliases} }}"}, GRAPHQL_RESPONSE)

    assert response.status_code == 400
    assert "data" not in response.json()
    assert "aliases" in response.json()["errors"][0]["message"]


async def test_graphql_response_json_gives_200_when_execution_began(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A field error during execution is a response with data (here null), so 200."""

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(orders, "allocate_order", broken)
    body = {
        "query": "mutation($id: ID!) { allocateOrder(id: $id) { errors { code } } }",
        "variables": {"id": "U2FsZXNPcmRlcjox"},
    }
    response = await post(client, body, GRAPHQL_RESPONSE)

    assert response.status_code == 200
    assert content_type(response) == GRAPHQL_RESPONSE_JSON
    assert response.json()["data"] is None
    assert response.json()["errors"][0]["path"] == ["allocateOrder"]


# -- application/json, as before ----------------------------------------------------------------


@pytest.mark.parametrize("body", REQUEST_ERRORS.values(), ids=REQUEST_ERRORS.keys())
@pytest.mark.parametrize("accept", [JSON_ONLY, {}, {"accept": "*/*"}], ids=["json", "none", "any"])
async def test_application_json_keeps_200_and_data_null_when_the_request_fails(
    client: httpx.AsyncClient, body: dict[str, Any], accept: dict[str, str]
) -> None:
    response = await post(client, body, accept)

    assert response.status_code == 200
    assert content_type(response) == JSON
    assert response.json()["data"] is None
    assert response.json()["errors"]


@pytest.mark.parametrize(
    ("body", "content", "message"),
    [
        (b'{"query": "{ __typename }"', JSON, "Unable to parse request body as JSON"),
        (b'{"query": "{ __typename }"}', "text/plain", "Unsupported content type"),
        (b'{"notquery": "{ __typename }"}', JSON, "No GraphQL query found in the request"),
        (b'{"query": "{ __typename }", "operationName": 1}', JSON, "`operationName`"),
        (b'{"query": "{ __typename }", "variables": "x"}', JSON, "`variables`"),
        (b"null", JSON, "must be a JSON object"),
        (b'"{ __typename }"', JSON, "must be a JSON object"),
        (b"1", JSON, "must be a JSON object"),
        (b"[]", JSON, "Batching is not enabled"),
    ],
    ids=[
        "not json",
        "not a json body",
        "no query",
        "operationName",
        "variables",
        "null",
        "a string",
        "a number",
        "an array",
    ],
)
@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE_JSON])
async def test_a_malformed_request_gets_400_with_a_json_error(
    client: httpx.AsyncClient, body: bytes, content: str, message: str, accept: str
) -> None:
    response = await client.post(
        "/graphql", content=body, headers={"content-type": content, "accept": accept}
    )

    assert response.status_code == 400
    assert content_type(response) == accept
    [error] = response.json()["errors"]
    assert message in error["message"]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        ("text/html", JSON),
        (JSON, JSON),
        (GRAPHQL_RESPONSE_JSON, GRAPHQL_RESPONSE_JSON),
        (f"{GRAPHQL_RESPONSE_JSON}, {JSON};q=0.9", GRAPHQL_RESPONSE_JSON),
        (f"{JSON}, {GRAPHQL_RESPONSE_JSON}", GRAPHQL_RESPONSE_JSON),
        (f"{JSON}, {GRAPHQL_RESPONSE_JSON};q=0.5", JSON),
        (f"{GRAPHQL_RESPONSE_JSON};q=0", JSON),
        (f"{GRAPHQL_RESPONSE_JSON};q=0.2, {JSON};q=0, */*", GRAPHQL_RESPONSE_JSON),
        ("Application/GraphQL-Response+JSON; charset=utf-8, */*;q=0.1", GRAPHQL_RESPONSE_JSON),
    ],
)
def test_negotiation(accept: str | None, expected: str) -> None:
    assert negotiate(accept) == expected


# -- GraphiQL --------------------------------------------------------------------------------------


class _Assets(HTMLParser):
    """The URLs a page loads (src and href), with their integrity attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: dict[str, str | None] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name in ("src", "href"):
            if url := attributes.get(name):
                self.urls[url] = attributes.get("integrity")


VENDORED = {
    "react-18.2.0.production.min.js",
    "react-dom-18.2.0.production.min.js",
    "js-cookie-3.0.5.min.js",
    "graphiql-3.8.3.min.js",
    "graphiql-3.8.3.min.css",
    "plugin-explorer-1.0.2.umd.js",
    "plugin-explorer-1.0.2.css",
}
CONTENT_TYPES = {
    ".js": {"text/javascript", "application/javascript"},
    ".css": {"text/css"},
    ".svg": {"image/svg+xml"},
}


async def test_graphiql_is_served_with_its_assets_from_this_server_alone(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/graphql", headers=HTML)

    assert page.status_code == 200
    assert content_type(page) == "text/html"
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert re.findall(r"(?i)\bhttps?:|//", page.text) == [], "the page names another server"
    parser = _Assets()
    parser.feed(page.text)
    assert parser.urls, "the page loads nothing?"
    assert {url.rpartition("/")[2] for url, sri in parser.urls.items() if sri} == VENDORED
    for url, integrity in parser.urls.items():
        assert url.startswith(f"{ASSETS_PATH}/"), url
        asset = await client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rindex(".") :]
        assert content_type(asset) in CONTENT_TYPES[suffix], url
        if integrity:
            algorithm, _, expected = integrity.partition("-")
            assert algorithm == "sha384", url
            digest = base64.b64encode(hashlib.sha384(asset.content).digest()).decode()
            assert digest == expected, f"{url} is not the file its integrity names"


async def test_graphiql_starts_from_a_local_script_that_calls_only_this_server(
    client: httpx.AsyncClient,
) -> None:
    script = await client.get(f"{ASSETS_PATH}/graphiql-start.js")

    assert script.status_code == 200
    assert re.findall(r"(?i)\b(?:https?|wss?)://", script.text) == []
    assert "window.location.href" in script.text


async def test_a_get_with_a_query_runs_it_even_from_a_browser(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", params={"query": "{ __typename }"}, headers=HTML)

    assert response.status_code == 200
    assert response.json()["data"] == {"__typename": "Query"}


@pytest.fixture
async def no_graphiql(database_url: str, engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        _env_file=None, database_url=database_url, pool_size=2, graphiql=False, auth="open"
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            yield http
    finally:
        await app.state.database.close()


async def test_graphiql_is_not_served_when_turned_off(no_graphiql: httpx.AsyncClient) -> None:
    page = await no_graphiql.get("/graphql", headers=HTML)

    assert page.status_code == 404
    assert content_type(page) != "text/html"
    assert "GraphiQL" not in page.text
    asset = await no_graphiql.get(f"{ASSETS_PATH}/graphiql-3.8.3.min.js")
    assert asset.status_code == 404
    query = await no_graphiql.get("/graphql", params={"query": "{ __typename }"})
    assert query.json()["data"] == {"__typename": "Query"}
