"""SPEC 7's edge, in-process over HTTP: the body limit and JSON nesting."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from starlette.types import Message

from schema.app import create_app
from schema.http import GRAPHQL_RESPONSE_JSON, JSON, MAX_JSON_DEPTH
from schema.settings import Settings
from tests.conftest import AppClient

LIMIT = 4096


@pytest.fixture
async def small(app_client: AppClient) -> AsyncIterator[httpx.AsyncClient]:
    """The app with a body limit of LIMIT bytes."""
    async with app_client(max_body_bytes=LIMIT) as http:
        yield http


@pytest.fixture
async def unreachable() -> AsyncIterator[httpx.AsyncClient]:
    """The app on a database it cannot reach, with a small body limit."""
    settings = Settings(
        _env_file=None, database_url="postgresql://nobody@127.0.0.1:1/none", max_body_bytes=LIMIT
    )
    app = create_app(settings)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as http:
            yield http
    finally:
        await app.state.database.close()


def nested(depth: int) -> str:
    """A JSON array `depth` levels deep."""
    return "[" * depth + "]" * depth


def body_of_depth(depth: int) -> str:
    """A POST body nested `depth` levels deep: itself, `variables`, then arrays."""
    return '{"query": "{ __typename }", "variables": {"a": ' + nested(depth - 2) + "}}"


# -- the body limit ------------------------------------------------------------------------------


class CountingBody:
    """An ASGI `receive` handing out `size` bytes in `chunk`-byte messages, counting what
    it handed out: what the app read."""

    def __init__(self, size: int, chunk: int = 65536) -> None:
        self.size = size
        self.chunk = chunk
        self.handed_out = 0

    async def __call__(self) -> Message:
        if self.handed_out >= self.size:
            return {"type": "http.disconnect"}
        part = min(self.chunk, self.size - self.handed_out)
        self.handed_out += part
        more = self.handed_out < self.size
        return {"type": "http.request", "body": b" " * part, "more_body": more}


async def call_asgi(
    settings: Settings, headers: list[tuple[bytes, bytes]], receive: CountingBody
) -> tuple[int, dict[str, str], bytes]:
    """POST /graphql straight into the ASGI app: status, headers and body of its answer."""
    app = create_app(settings)
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/graphql", "raw_path": b"/graphql", "query_string": b"",
        "root_path": "", "headers": [(b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 1), "server": ("test", 80),
    }  # fmt: skip
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    try:
        await app(scope, receive, send)
    finally:
        await app.state.database.close()
    start = sent[0]
    headers_sent = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], headers_sent, body


async def test_a_body_declared_over_the_limit_gets_413_and_is_not_read(
    database_url: str,
) -> None:
    fifty_mb = CountingBody(50_000_000)
    settings = Settings(_env_file=None, database_url=database_url, max_body_bytes=LIMIT)

    status, headers, body = await call_asgi(settings, [(b"content-length", b"50000000")], fifty_mb)

    assert status == 413
    assert fifty_mb.handed_out == 0
    assert headers["connection"] == "close"
    assert b"BODY_TOO_LARGE" in body


async def test_a_streamed_body_is_refused_as_soon_as_it_passes_the_limit(
    database_url: str,
) -> None:
    """No Content-Length (chunked): the app stops reading one chunk past the limit."""
    fifty_mb = CountingBody(50_000_000, chunk=1000)
    settings = Settings(_env_file=None, database_url=database_url, max_body_bytes=LIMIT)

    status, headers, _ = await call_asgi(settings, [], fifty_mb)

    assert status == 413
    assert LIMIT < fifty_mb.handed_out <= LIMIT + 1000
    assert headers["connection"] == "close"


@pytest.mark.parametrize("accept", [JSON, GRAPHQL_RESPONSE_JSON])
async def test_a_body_over_the_limit_gets_a_json_error_in_the_negotiated_type(
    small: httpx.AsyncClient, accept: str
) -> None:
    response = await small.post(
        "/graphql",
        content=b" " * (LIMIT + 1),
        headers={"content-type": "application/json", "accept": accept},
    )

    assert response.status_code == 413
    assert response.headers["content-type"] == accept
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BODY_TOO_LARGE"}
    assert f"limit of {LIMIT} bytes" in error["message"]


async def test_a_body_of_exactly_the_limit_is_served(small: httpx.AsyncClient) -> None:
    body = b'{"query": "{ __typename }"}'
    response = await small.post(
        "/graphql",
        content=body + b" " * (LIMIT - len(body)),
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 200
    assert response.json()["data"] == {"__typename": "Query"}


def test_the_body_limit_is_a_mebibyte_unless_set() -> None:
    assert Settings(_env_file=None).max_body_bytes == 1024 * 1024
    assert Settings(_env_file=None, max_body_bytes=10).max_body_bytes == 10
    with pytest.raises(ValidationError):
        Settings(_env_file=None, max_body_bytes=0)


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


async def test_the_edges_refusals_need_no_database(unreachable: httpx.AsyncClient) -> None:
    """They come before any statement: a request refused at the edge takes no
    connection from the pool."""
    large = await unreachable.post("/graphql", content=b" " * (LIMIT + 1))
    deep = await post_raw(unreachable, body_of_depth(65))

    assert (large.status_code, deep.status_code) == (413, 400)
