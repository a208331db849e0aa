"""The ASGI application: GraphQL at /graphql (over HTTP as schema/http.py says), GraphiQL's
files at /graphiql-assets/, health probes, one engine per process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from cross_web import AsyncHTTPRequestAdapter
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp
from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionResult

from db import idempotency as idempotency_keys
from db.database import Database
from db.engine import head_revision, migrated_to
from db.errors import Unavailable
from resolvers.context import Context
from schema import idempotency
from schema.credentials import Authenticator
from schema.edge import REQUEST_ID_HEADER, BodyLimitMiddleware, RequestIdMiddleware
from schema.http import GraphQLOverHTTP, graphiql_assets
from schema.loopback import LoopbackOnly, UnsafeSettingsError, unsafe_open_mode
from schema.root import build_schema
from schema.settings import Settings
from schema.tokens import AccessTokens, ProviderKeys
from services import retry

log = logging.getLogger("allocation")


class AllocationGraphQL(GraphQLOverHTTP[Context]):
    def __init__(
        self, database: Database, settings: Settings, authenticator: Authenticator
    ) -> None:
        super().__init__(build_schema(settings), graphiql=settings.graphiql)
        self.database, self.authenticator = database, authenticator
        self.idempotency_ttl = settings.idempotency_ttl
        self.auto_fill_backorders = settings.auto_fill_backorders

    async def get_context(self, request: Any, response: Any) -> Context:
        request_id = getattr(request.state, "request_id", None)  # schema/edge.py sets it
        context = Context(
            self.database, request, response, request_id=request_id,
            auto_fill_backorders=self.auto_fill_backorders,
        )  # fmt: skip
        request.state.context = context
        # Strawberry makes the context before it answers a wrong method (405) or serves
        # GraphiQL's page; neither needs a credential, every GraphQL operation does. The
        # credential is checked here, before the body is read, on the request's connection.
        adapter = self.request_adapter_class(request)
        if self.is_request_allowed(adapter) and not self.should_render_graphql_ide(adapter):
            context.credential = await self.authenticator.credential(request, context.session)
        return context

    async def execute_single(  # noqa: PLR0917 (strawberry's signature)
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        await idempotency.begin(context, request, request_data, self.idempotency_ttl)
        return await super().execute_single(
            request, request_adapter, sub_response, context, root_value, request_data
        )

    async def finish(self, request: Request, response: Response | None) -> Response | None:
        """An idempotent request's outcome is kept (or not), then the request's database
        connection goes back to the pool."""
        made: Context | None = getattr(request.state, "context", None)
        if made is None:
            return response
        try:
            if response is not None:
                return await idempotency.end(made, request, response)
            return response
        finally:
            await made.close()


async def metrics(_: Request) -> Response:
    """This process's counters in Prometheus' text format (METRICS=true; bench/ reads it)."""
    return PlainTextResponse(
        "# HELP allocation_internal_retries_total Units of work run again after losing a race.\n"
        "# TYPE allocation_internal_retries_total counter\n"
        f"allocation_internal_retries_total {retry.retry_count}\n",
        media_type="text/plain; version=0.0.4",
    )


PURGE_EVERY = 600.0  # seconds between purges of expired idempotency keys


async def purge_idempotency_keys(database: Database, every: float) -> None:
    """Delete expired idempotency keys now and then, for as long as the app serves (each
    worker process does; a purge finds nothing the others have purged)."""
    while True:
        try:
            async with database.session() as session:
                purged = await idempotency_keys.purge(session)
            if purged:
                log.info("purged %d expired idempotency keys", purged)
        except Unavailable:
            log.warning("idempotency keys not purged: the database could not be reached")
        await asyncio.sleep(every)


def authenticator(
    settings: Settings, jwks_transport: httpx.AsyncBaseTransport | None = None
) -> Authenticator:
    tokens = None
    if settings.jwt_jwks and settings.jwt_issuer and settings.jwt_audience:
        tokens = AccessTokens(
            ProviderKeys(settings.jwt_jwks, transport=jwks_transport),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
    return Authenticator(required=settings.auth == "required", tokens=tokens)


class AllocationApp(Starlette):
    def build_middleware_stack(self) -> ASGIApp:
        # Outside Starlette's ServerErrorMiddleware, so that even its 500 has an id.
        return RequestIdMiddleware(super().build_middleware_stack())


def freeze_startup_objects() -> None:
    """Exempt what exists once a serving process has built its app (modules, the schema,
    the caches' rules) from the garbage collector's full passes: they live as long as the
    process, and the full passes a request's garbage triggers would otherwise walk them
    all again. Called by the process entry points (schema/serve.py, schema/asgi.py), not
    by create_app, which tests call many times in one process. A page of 50 orders of 20
    lines took 18% less CPU with it, an order screen 6% to 14% less, and those full
    passes were the p99 tails (docs/benchmarks.md, step 10)."""
    gc.collect()  # garbage made while starting is collected, not frozen
    gc.freeze()


def create_app(
    settings: Settings, *, jwks_transport: httpx.AsyncBaseTransport | None = None
) -> Starlette:
    """The app for settings.database_url, which must be set (serve.py resolves it).

    Raises UnsafeSettingsError for open mode on a HOST that is not loopback.
    `jwks_transport` carries the fetches of JWT_JWKS (tests give one that trusts their CA).
    """
    assert settings.database_url, "create_app needs a database URL"
    refusal = unsafe_open_mode(settings)
    if refusal is not None:
        raise UnsafeSettingsError(refusal)
    if settings.auth == "open":
        log.warning(
            "AUTH=open: a request without a credential acts as 'anonymous' with every scope; "
            "only requests to and from this machine are answered"
        )
    database = Database(settings.database_url, settings.pool_size)
    gate = authenticator(settings, jwks_transport)
    graphql = AllocationGraphQL(database, settings, gate)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        """Ready when the database answers and its schema is at the newest migration."""
        try:
            at = await migrated_to(database)
        except Exception:  # any failure to reach the database means not ready
            return JSONResponse({"status": "database unavailable"}, status_code=503)
        if at != head_revision():
            return JSONResponse(
                {"status": "migrations pending", "database": at, "head": head_revision()},
                status_code=503,
            )
        return JSONResponse({"status": "ready", "revision": at})

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        purging = asyncio.create_task(purge_idempotency_keys(database, PURGE_EVERY))
        try:
            yield
        finally:
            purging.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purging
            await gate.close()
            await database.close()

    routes: list[BaseRoute] = [
        Route("/graphql", graphql),  # any method: the view answers 405 itself
        Route("/healthz", healthz),
        Route("/readyz", readyz),
    ]
    if settings.graphiql:
        routes.append(graphiql_assets())
    if settings.metrics:
        routes.append(Route("/metrics", metrics))
    # Outermost first: in open mode, nothing (not even CORS) answers another machine.
    middleware = [Middleware(LoopbackOnly)] if settings.auth == "open" else []
    middleware += [
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=settings.cors_allow_headers,
            allow_credentials=settings.cors_allow_credentials,
            expose_headers=[REQUEST_ID_HEADER],
            max_age=600,
        ),
        # Inside CORS, so that a browser may read a 413 too.
        Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
    ]
    app = AllocationApp(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.database = database
    app.state.authenticator = gate
    return app
