"""GraphQL over HTTP as the GraphQL-over-HTTP spec has it, on strawberry's ASGI view,
and a GraphiQL page that loads nothing from outside this server.

- POST with a JSON body runs any operation; GET runs queries only: a mutation over
  GET is refused with 405 and `Allow: POST`, and nothing runs.
- Responses are `application/graphql-response+json` when the client's Accept names it
  (not through a wildcard) at least as high as `application/json`. Then a request
  that fails before execution (parse, validation, variable coercion, a query limit)
  gets 400 and no `data` entry; every other result gets 200. Everyone else gets
  `application/json` and 200 for any GraphQL result, as before.
- Malformed requests (body not a JSON object, no query, a parameter of the wrong type,
  JSON nested deeper than MAX_JSON_DEPTH) get 400, other methods 405, all with a JSON
  `{"errors": [{"message": ...}]}` body.
"""

from __future__ import annotations

import functools
import html
from pathlib import Path
from typing import Any, TypeVar

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.base import BaseSchema
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
_JSON_RANGES = (JSON, "application/*", "*/*")  # most specific first

STATIC = Path(__file__).parent / "static"
GRAPHIQL_ASSETS = STATIC / "graphiql"
ASSETS_PATH = "/graphiql-assets"
_GRAPHIQL_PAGE = (STATIC / "graphiql.html").read_text(encoding="utf-8")
# The page and its scripts come from this server only; the page talks to it alone.
GRAPHIQL_CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",  # GraphiQL sets inline style attributes
        "img-src 'self' data:",
        "font-src 'self' data:",  # GraphiQL's fonts are data: URLs in its CSS
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

ContextT = TypeVar("ContextT")

# SPEC 7: JSON nested deeper than this gets 400. Each object or array is one level, so a
# POST body `{"variables": {"ids": [...]}}` is 3 deep. graphql-core and the cost estimate
# walk variables recursively: the limit keeps them far from Python's recursion limit.
MAX_JSON_DEPTH = 64


def _accept_ranges(accept: str) -> dict[str, float]:
    """Media ranges of an Accept header with their quality (q) values."""
    ranges: dict[str, float] = {}
    for part in accept.split(","):
        media_range, *params = part.split(";")
        media_range = media_range.strip().lower()
        if not media_range:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
        ranges[media_range] = max(quality, ranges.get(media_range, 0.0))
    return ranges


@functools.lru_cache(maxsize=64)  # clients send few distinct Accept headers
def negotiate(accept: str | None) -> str:
    """The media type of the GraphQL response to a request with this Accept header.

    `application/graphql-response+json` when it is named, and at a quality at least
    that of `application/json` (which its most specific matching range gives).
    Otherwise `application/json`: also when Accept is missing, a wildcard or names
    neither type (the spec lets a server disregard such a header instead of 406).
    """
    ranges = _accept_ranges(accept or "")
    wanted = ranges.get(GRAPHQL_RESPONSE_JSON, 0.0)
    json_quality = next((ranges[r] for r in _JSON_RANGES if r in ranges), 0.0)
    return GRAPHQL_RESPONSE_JSON if wanted > 0 and wanted >= json_quality else JSON


def is_request_error(result: ExecutionResult) -> bool:
    """True when the request failed before execution began, so there is no data.

    Parse and validation errors are strawberry's PreExecutionError. Variable coercion
    failures and refusals by an extension before execution (the cost limit) come
    back with data null and errors that, unlike every field error, have no path.
    """
    if isinstance(result, PreExecutionError):
        return True
    errors = result.errors or []
    return result.data is None and bool(errors) and all(e.path is None for e in errors)


class Answered(Exception):  # noqa: N818 - not a failure: the answer, made early
    """Raised while a request runs to answer it at once with `response`."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def nested_deeper_than(value: object, limit: int) -> bool:
    """Whether decoded JSON nests objects and arrays more than `limit` levels deep.

    Level by level rather than recursively, so no input can exhaust the stack, and it
    stops at the first level past the limit. An ordinary request takes about 10 µs; the
    worst a 1 MiB body can ask (100,000 small arrays) about 40 ms, under twice what
    orjson took to parse it. Exact type tests and plain loops: isinstance with `dict |
    list` and a generator made that five times slower."""
    level: list[Any] = [value] if type(value) in _CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        for node in level:
            for child in node.values() if type(node) is dict else node:
                if type(child) in _CONTAINERS:
                    below.append(child)
        level = below
    return False


_CONTAINERS = (dict, list)  # what orjson decodes objects and arrays to, and nothing else


class MethodNotAllowedError(HTTPException):
    def __init__(self, reason: str, allow: str) -> None:
        super().__init__(405, reason)
        self.allow = allow


class RefusedRequest(HTTPException):
    """A request refused before execution with a code a client can act on (in the body's
    `extensions.code`) and headers of its own (a 401's WWW-Authenticate)."""

    def __init__(
        self, status_code: int, reason: str, code: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status_code, reason)
        self.code = code
        self.headers = headers or {}


def too_deep() -> RefusedRequest:
    return RefusedRequest(
        400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels is refused.", "JSON_TOO_DEEP"
    )


def error_response(
    request: Request, error: HTTPException, headers: dict[str, str] | None = None
) -> Response:
    """A GraphQL-shaped error body for a request refused before execution."""
    headers = {"Vary": "Accept", **(headers or {})}
    if error.status_code == 405:
        headers["Allow"] = error.allow if isinstance(error, MethodNotAllowedError) else "GET, POST"
    body: dict[str, object] = {"message": error.reason}
    if isinstance(error, RefusedRequest):
        body["extensions"] = {"code": error.code}
        headers.update(error.headers)
    return JSONResponse(
        {"errors": [body]},
        status_code=error.status_code,
        headers=headers,
        media_type=negotiate(request.headers.get("accept")),
    )


def graphiql_page(assets_path: str = ASSETS_PATH) -> str:
    return _GRAPHIQL_PAGE.replace("{{assets}}", html.escape(assets_path, quote=True))


def graphiql_assets() -> Mount:
    """The vendored GraphiQL files (see static/graphiql/README.md) at ASSETS_PATH."""
    return Mount(ASSETS_PATH, app=StaticFiles(directory=GRAPHIQL_ASSETS), name="graphiql-assets")


class GraphQLOverHTTP(GraphQL[ContextT, None]):
    """Strawberry's ASGI GraphQL view with the media types, status codes and methods
    described above, and GraphiQL from graphiql_assets() when `graphiql` is true."""

    def __init__(self, schema: BaseSchema, *, graphiql: bool) -> None:
        super().__init__(schema, graphql_ide="graphiql" if graphiql else None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive=receive)
        response: Response | None = None
        try:
            response = await self.run(request)
        except HTTPException as error:
            response = error_response(request, error)
        except Answered as answered:
            response = answered.response
        finally:
            response = await self.finish(request, response)
        assert response is not None, "an answer was made, or the request failed above"
        await response(scope, receive, send)

    async def finish(self, request: Request, response: Response | None) -> Response | None:
        """Called once a request's answer is made (None: it failed), before it is sent:
        the place to settle and give back what the request held. Returns the answer to
        send: `response`, or another when settling it failed."""
        return response

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        # create_response sees only the sub-response, so the negotiated type rides on it.
        sub_response.media_type = negotiate(request.headers.get("accept"))
        return sub_response

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        parsed = await super().parse_http_body(request)
        for operation in parsed if isinstance(parsed, list) else [parsed]:
            if not isinstance(operation.operation_name, str | None):
                raise HTTPException(
                    400, "The GraphQL operation's `operationName` must be a string or null."
                )
        return parsed

    async def execute_single(  # noqa: PLR0917 (strawberry's signature)
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: ContextT,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        try:
            return await super().execute_single(
                request=request,
                request_adapter=request_adapter,
                sub_response=sub_response,
                context=context,
                root_value=root_value,
                request_data=request_data,
            )
        except HTTPException as error:
            # Strawberry refuses a mutation over GET with 400; the spec says 405.
            if request_adapter.method == "GET" and isinstance(
                error.__cause__, InvalidOperationTypeError
            ):
                raise MethodNotAllowedError(
                    "Mutations are not allowed over GET: send them with POST.", allow="POST"
                ) from error
            raise

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        if is_request_error(result) and negotiate(request.headers.get("accept")) == (
            GRAPHQL_RESPONSE_JSON
        ):
            response.pop("data", None)
        return response

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        media_type = sub_response.media_type or JSON
        status = 200
        if (
            media_type == GRAPHQL_RESPONSE_JSON
            and isinstance(response_data, dict)
            and "data" not in response_data
        ):
            status = 400
        response = Response(
            self.encode_json(response_data),
            status_code=sub_response.status_code or status,
            media_type=media_type,
            headers={"Vary": "Accept"},
        )
        response.headers.raw.extend(sub_response.headers.raw)
        if sub_response.background:
            response.background = sub_response.background
        return response

    def encode_json(self, data: object) -> bytes:
        # orjson: a tenth of json.dumps's time for a page of orders.
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        """A POST body, or GET's `variables` or `extensions`, refused when nested deeper
        than MAX_JSON_DEPTH (orjson itself stops at 1024 levels, with the same answer)."""
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as error:
            if "depth limit" in str(error):
                raise too_deep() from error
            raise
        if nested_deeper_than(value, MAX_JSON_DEPTH):
            raise too_deep()
        # A POST body comes as bytes (GET's parameters as text, checked later): strawberry
        # reads fields of any body that is not an array, so `null` or `"x"` would be a 500.
        if isinstance(data, bytes) and not isinstance(value, dict | list):
            raise HTTPException(400, "The request body must be a JSON object.")
        return value

    @property
    def graphql_ide_html(self) -> str:
        return graphiql_page()

    async def render_graphql_ide(self, request: Request) -> Response:
        page = graphiql_page(request.scope.get("root_path", "") + ASSETS_PATH)
        return HTMLResponse(
            page, headers={"Content-Security-Policy": GRAPHIQL_CSP, "Vary": "Accept"}
        )
