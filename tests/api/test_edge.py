"""SPEC 7's edge, in-process over HTTP: the body limit, JSON nesting, X-Request-Id, CORS.

tests/api/test_edge_server.py checks the same against the real server (uvicorn)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from starlette.types import Message

from resolvers.context import Context
from schema.app import AllocationGraphQL, create_app
from schema.edge import request_id
from schema.http import ASSETS_PATH, GRAPHQL_RESPONSE_JSON, JSON, MAX_JSON_DEPTH
from schema.logs import RequestIdFilter
from schema.settings import CORS_ALLOW_HEADERS, Settings
from services.ports import UnitOfWorkFactory
from tests.conftest import AppClient
from tests.service import helpers

LIMIT = 4096
TYPENAME = {"query": "{ __typename }"}
NEW_ID = re.compile(r"[0-9a-f]{32}")
ORIGIN = "http://localhost:5173"


@pytest.fixture
async def small(app_client: AppClient) -> AsyncIterator[httpx.AsyncClient]:
    """The app with a body limit of LIMIT bytes."""
    async with app_client(max_body_bytes=LIMIT) as http:
        yield http


@pytest.fixture
async def unreachable() -> AsyncIterator[httpx.AsyncClient]:
    """The app on a database it cannot reach, with a small body limit."""
    settings = Settings(
        _env_file=None, database_url="postgresql://nobody@127.0.0.1:1/none",
        max_body_bytes=LIMIT, auth="open",
    )  # fmt: skip
    app = create_app(settings)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://localhost"
        ) as http:
            yield http
    finally:
        await app.state.database.close()


def nested(depth: int) -> str:
    """A JSON array `depth` levels deep."""
    return "[" * depth + "]" * depth


def dumps(value: object) -> bytes:
    return json.dumps(value).encode()


def nested_list(depth: int) -> list[Any]:
    """A list `depth` levels deep, built without recursion."""
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


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
        "root_path": "",
        "headers": [(b"host", b"localhost"), (b"content-type", b"application/json"), *headers],
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
    settings = Settings(
        _env_file=None, database_url=database_url, max_body_bytes=LIMIT, auth="open"
    )

    status, headers, body = await call_asgi(settings, [(b"content-length", b"50000000")], fifty_mb)

    assert status == 413
    assert fifty_mb.handed_out == 0
    assert headers["connection"] == "close"
    assert NEW_ID.fullmatch(headers["x-request-id"])
    assert b"BODY_TOO_LARGE" in body


async def test_a_streamed_body_is_refused_as_soon_as_it_passes_the_limit(
    database_url: str,
) -> None:
    """No Content-Length (chunked): the app stops reading one chunk past the limit."""
    fifty_mb = CountingBody(50_000_000, chunk=1000)
    settings = Settings(
        _env_file=None, database_url=database_url, max_body_bytes=LIMIT, auth="open"
    )

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


@pytest.mark.parametrize(("depth", "status"), [(64, 200), (65, 400)])
async def test_objects_count_as_levels_as_arrays_do(
    client: httpx.AsyncClient, depth: int, status: int
) -> None:
    variables = '{"a": ' * (depth - 1) + "1" + "}" * (depth - 1)  # the body is level 1
    body = '{"query": "{ __typename }", "variables": ' + variables + "}"

    response = await post_raw(client, body)

    assert response.status_code == status
    if status == 400:
        assert_too_deep(response)


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


# -- odd requests -------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    # Big integers and infinities too: json.dumps writes them, orjson reads neither as such.
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
DOCUMENTS = st.sampled_from(
    ["{ __typename }", "{", "", "query($v: [ID!]!) { nodes(ids: $v) { id } }", "mutation { x }"]
) | st.text(max_size=50)
REQUEST_SHAPES = st.fixed_dictionaries(
    {},
    optional={
        "query": DOCUMENTS | JSON_VALUES,
        "variables": JSON_VALUES,
        "operationName": JSON_VALUES,
        "extensions": JSON_VALUES,
    },
)
BODIES = (
    REQUEST_SHAPES.map(dumps)
    | JSON_VALUES.map(dumps)
    | st.binary(max_size=200)
    | st.integers(1, 200).map(
        lambda n: b'{"query": "{ __typename }", "variables": {"a": ' + nested(n).encode() + b"}}"
    )
)
MEDIA_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=latin-1",
        GRAPHQL_RESPONSE_JSON,
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "*/*",
        "",
    ]
) | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
HEADER_BYTES = st.binary(max_size=150).filter(lambda b: b"\r" not in b and b"\n" not in b)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # the same inputs every run: CI fails on code, never on luck
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(["POST", "GET"]),
    body=BODIES,
    content_type=st.just(JSON) | MEDIA_TYPES,  # mostly bodies strawberry goes on to read
    accept=MEDIA_TYPES,
    sent_id=HEADER_BYTES,
    query=st.dictionaries(
        st.sampled_from(["query", "variables", "operationName", "extensions"]),
        st.text(max_size=40) | JSON_VALUES.map(json.dumps),
    ),
)
async def test_no_odd_request_gets_a_server_error(
    unreachable: httpx.AsyncClient,
    *,
    method: str,
    body: bytes,
    content_type: str,
    accept: str,
    sent_id: bytes,
    query: dict[str, str],
) -> None:
    """Malformed bodies, media types and headers: a refusal with a JSON error body, or a
    GraphQL answer; never a 5xx or a masked failure, always an X-Request-Id. (The app's
    database is unreachable: whatever needed it answers UNAVAILABLE.)"""
    headers = [
        (b"content-type", content_type.encode()),
        (b"accept", accept.encode()),
        (b"x-request-id", sent_id),
    ]
    if method == "GET":
        response = await unreachable.get("/graphql", params=query, headers=headers)
    else:
        response = await unreachable.post("/graphql", content=body, headers=headers)

    assert response.status_code in (200, 400, 405, 413), response.text
    assert response.headers["x-request-id"]
    if "text/html" in response.headers["content-type"]:
        return  # GraphiQL's page, for a GET without a query
    answer = response.json()
    assert "Unexpected error." not in response.text, answer
    if response.status_code != 200:
        assert answer["errors"][0]["message"]


# -- X-Request-Id --------------------------------------------------------------------------------

EVERY_KIND = {
    "graphql": ("POST", "/graphql", {"json": TYPENAME}),
    "graphql get": ("GET", "/graphql", {"params": TYPENAME}),
    "graphiql page": ("GET", "/graphql", {"headers": {"accept": "text/html"}}),
    "graphiql asset": ("GET", f"{ASSETS_PATH}/favicon.svg", {}),
    "healthz": ("GET", "/healthz", {}),
    "readyz": ("GET", "/readyz", {}),
    "405": ("PUT", "/graphql", {"json": TYPENAME}),
    "400 not json": ("POST", "/graphql", {"content": b"{", "headers": {"content-type": JSON}}),
    "400 too deep": (
        "POST",
        "/graphql",
        {"json": {**TYPENAME, "variables": {"a": nested_list(70)}}},
    ),
    "413": ("POST", "/graphql", {"content": b" " * (LIMIT + 1)}),
    "404": ("GET", "/nowhere", {}),
    "preflight": (
        "OPTIONS",
        "/graphql",
        {"headers": {"origin": ORIGIN, "access-control-request-method": "POST"}},
    ),
}


@pytest.mark.parametrize(("method", "path", "options"), EVERY_KIND.values(), ids=EVERY_KIND)
async def test_every_response_carries_a_request_id(
    app_client: AppClient, method: str, path: str, options: dict[str, Any]
) -> None:
    async with app_client(max_body_bytes=LIMIT, cors_origins=[ORIGIN]) as http:
        made = await http.request(method, path, **options)
        echoed = await http.request(
            method,
            path,
            **{**options, "headers": {**options.get("headers", {}), "x-request-id": "r-1"}},
        )

    assert NEW_ID.fullmatch(made.headers["x-request-id"]), made.headers
    assert echoed.headers["x-request-id"] == "r-1"
    assert made.headers.get_list("x-request-id") == [made.headers["x-request-id"]]


@pytest.mark.parametrize(
    "sent",
    [
        b"a",
        b"x" * 128,
        b"order 42/retry:1 (web) ~!@#$%^&*",
        b"550e8400-e29b-41d4-a716-446655440000",
    ],
)
async def test_a_clients_request_id_of_printable_ascii_is_kept(
    client: httpx.AsyncClient, sent: bytes
) -> None:
    response = await client.get("/healthz", headers=[(b"x-request-id", sent)])

    assert response.headers["x-request-id"] == sent.decode()


@pytest.mark.parametrize(
    "sent",
    [b"x" * 129, b"", "caf\u00e9".encode(), b"a\x01b", b"tab\there", b"del\x7f"],
    ids=["129 characters", "empty", "not ascii", "control", "tab", "delete"],
)
async def test_an_unusable_request_id_is_replaced_by_a_new_one(
    client: httpx.AsyncClient, sent: bytes
) -> None:
    response = await client.get("/healthz", headers=[(b"x-request-id", sent)])

    assert NEW_ID.fullmatch(response.headers["x-request-id"])


async def test_even_a_500_carries_the_request_id(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure no code path handles (here, giving back the request's connection) ends
    in Starlette's plain 500, and that too names the request."""

    async def broken(self: AllocationGraphQL, request: Any, response: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(AllocationGraphQL, "finish", broken)
    app = create_app(Settings(_env_file=None, database_url=database_url, auth="open"))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            response = await http.post("/graphql", json=TYPENAME, headers={"x-request-id": "r-500"})
    finally:
        await app.state.database.close()

    assert response.status_code == 500
    assert response.headers["x-request-id"] == "r-500"


async def test_requests_without_an_id_get_different_ones(client: httpx.AsyncClient) -> None:
    ids = {(await client.get("/healthz")).headers["x-request-id"] for _ in range(5)}

    assert len(ids) == 5


async def test_the_graphql_context_has_the_request_id(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Context] = []
    get_context = AllocationGraphQL.get_context

    async def recording(self: AllocationGraphQL, request: Any, response: Any) -> Context:
        made.append(await get_context(self, request, response))
        return made[-1]

    monkeypatch.setattr(AllocationGraphQL, "get_context", recording)
    await client.post("/graphql", json=TYPENAME, headers={"x-request-id": "ctx-7"})
    fresh = await client.post("/graphql", json=TYPENAME)

    assert [c.request_id for c in made] == ["ctx-7", fresh.headers["x-request-id"]]


RECEIVE = """mutation { adjustInventory(input: {sku: "WIDGET", lotNumber: "L1",
  locationCode: "BIN-1", quantity: 3, reason: "count"}) { errors { code } } }"""
MOVEMENTS = "{ movements(first: 10) { nodes { kind requestId } } }"


async def test_the_ledger_keeps_the_request_id_of_each_change(
    client: httpx.AsyncClient, uow: UnitOfWorkFactory
) -> None:
    await helpers.one_balance(uow, 10)
    await client.post("/graphql", json={"query": RECEIVE}, headers={"x-request-id": "scan-4711"})
    fresh = await client.post("/graphql", json={"query": RECEIVE})

    answer = await client.post("/graphql", json={"query": MOVEMENTS})
    ledger = [(m["kind"], m["requestId"]) for m in answer.json()["data"]["movements"]["nodes"]]
    assert ledger[:2] == [
        ("RECEIPT", fresh.headers["x-request-id"]),
        ("RECEIPT", "scan-4711"),
    ]


async def test_the_requests_log_lines_carry_its_id_and_others_do_not(
    small: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.handler.addFilter(RequestIdFilter())
    with caplog.at_level(logging.INFO, logger="schema.edge"):
        await small.post("/graphql", content=b" " * (LIMIT + 1), headers={"x-request-id": "log-me"})
        logging.getLogger("schema.edge").info("outside any request")

    [refusal, outside] = [r for r in caplog.records if r.name == "schema.edge"]
    assert "refused with 413" in refusal.getMessage()
    assert refusal.request_id == "log-me"  # type: ignore[attr-defined]
    assert refusal.exc_info is None  # a client's mistake: no traceback
    assert refusal.levelno == logging.INFO
    assert outside.request_id == "-"  # type: ignore[attr-defined]
    assert request_id.get() is None  # the request's id did not outlive it


# -- CORS ----------------------------------------------------------------------------------------


def preflight(headers: str) -> dict[str, str]:
    return {
        "origin": ORIGIN,
        "access-control-request-method": "POST",
        "access-control-request-headers": headers,
    }


@pytest.mark.parametrize("header", CORS_ALLOW_HEADERS)
async def test_a_preflight_for_each_default_header_passes(
    app_client: AppClient, header: str
) -> None:
    async with app_client(cors_origins=[ORIGIN]) as http:
        response = await http.options("/graphql", headers=preflight(header))

    assert response.status_code == 200
    assert header in response.headers["access-control-allow-headers"].lower()
    assert response.headers["access-control-allow-origin"] == ORIGIN


async def test_a_preflight_for_all_default_headers_at_once_passes(app_client: AppClient) -> None:
    async with app_client(cors_origins=[ORIGIN]) as http:
        response = await http.options("/graphql", headers=preflight(",".join(CORS_ALLOW_HEADERS)))

    assert response.status_code == 200


async def test_a_preflight_for_an_unlisted_header_is_refused(app_client: AppClient) -> None:
    async with app_client(cors_origins=[ORIGIN]) as http:
        response = await http.options("/graphql", headers=preflight("content-type, x-unlisted"))

    assert response.status_code == 400
    assert response.text == "Disallowed CORS headers"
    assert "x-unlisted" not in response.headers["access-control-allow-headers"].lower()


async def test_cors_allow_headers_replaces_the_default_list(app_client: AppClient) -> None:
    async with app_client(cors_origins=[ORIGIN], cors_allow_headers=["X-Tenant"]) as http:
        tenant = await http.options("/graphql", headers=preflight("x-tenant"))
        authorization = await http.options("/graphql", headers=preflight("authorization"))

    assert tenant.status_code == 200
    assert authorization.status_code == 400


async def test_browsers_may_read_the_request_id(app_client: AppClient) -> None:
    async with app_client(cors_origins=[ORIGIN]) as http:
        response = await http.post("/graphql", json=TYPENAME, headers={"origin": ORIGIN})

    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


async def test_credentials_are_allowed_for_an_explicit_origin_when_set(
    app_client: AppClient,
) -> None:
    async with app_client(cors_origins=[ORIGIN], cors_allow_credentials=True) as http:
        allowed = await http.options("/graphql", headers=preflight("content-type"))
        answer = await http.post(
            "/graphql", json=TYPENAME, headers={"origin": ORIGIN, "cookie": "session=1"}
        )

    for response in (allowed, answer):
        assert response.headers["access-control-allow-credentials"] == "true"
        assert response.headers["access-control-allow-origin"] == ORIGIN
    assert answer.json()["data"] == {"__typename": "Query"}


async def test_credentials_are_not_allowed_unless_set(app_client: AppClient) -> None:
    async with app_client(cors_origins=[ORIGIN]) as http:
        allowed = await http.options("/graphql", headers=preflight("content-type"))

    assert allowed.status_code == 200
    assert "access-control-allow-credentials" not in allowed.headers


def test_credentials_with_a_wildcard_origin_are_refused() -> None:
    with pytest.raises(ValidationError, match="CORS_ALLOW_CREDENTIALS=true cannot be used"):
        Settings(_env_file=None, cors_origins=["*"], cors_allow_credentials=True)


def test_the_cors_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ALLOW_HEADERS", '["content-type", "x-tenant"]')
    monkeypatch.setenv("CORS_ALLOW_CREDENTIALS", "true")
    monkeypatch.setenv("CORS_ORIGINS", f'["{ORIGIN}"]')

    settings = Settings(_env_file=None)

    assert settings.cors_allow_headers == ["content-type", "x-tenant"]
    assert settings.cors_allow_credentials is True
    monkeypatch.setenv("CORS_ORIGINS", '["*"]')
    with pytest.raises(ValidationError):
        Settings(_env_file=None)
