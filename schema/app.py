"""The ASGI application: GraphQL at /graphql (over HTTP as schema/http.py says), GraphiQL's
files at /graphiql-assets/, health probes, one engine per process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from db.database import Database
from db.engine import head_revision, migrated_to
from resolvers.context import Context
from schema.edge import REQUEST_ID_HEADER, BodyLimitMiddleware, RequestIdMiddleware
from schema.http import GraphQLOverHTTP, graphiql_assets
from schema.root import build_schema
from schema.settings import Settings
from services import retry


class AllocationGraphQL(GraphQLOverHTTP[Context]):
    def __init__(self, database: Database, settings: Settings) -> None:
        super().__init__(build_schema(settings), graphiql=settings.graphiql)
        self.database = database

    async def get_context(self, request: Any, response: Any) -> Context:
        request_id = getattr(request.state, "request_id", None)  # schema/edge.py sets it
        context = Context(self.database, request, response, request_id=request_id)
        request.state.context = context
        return context

    async def finish(self, request: Request) -> None:
        """The request's database connection goes back to the pool."""
        made: Context | None = getattr(request.state, "context", None)
        if made is not None:
            await made.close()


async def metrics(_: Request) -> Response:
    """This process's counters in Prometheus' text format (METRICS=true; bench/ reads it)."""
    return PlainTextResponse(
        "# HELP allocation_internal_retries_total Units of work run again after losing a race.\n"
        "# TYPE allocation_internal_retries_total counter\n"
        f"allocation_internal_retries_total {retry.retry_count}\n",
        media_type="text/plain; version=0.0.4",
    )


class AllocationApp(Starlette):
    def build_middleware_stack(self) -> ASGIApp:
        # Outside Starlette's ServerErrorMiddleware, so that even its 500 has an id.
        return RequestIdMiddleware(super().build_middleware_stack())


def create_app(settings: Settings) -> Starlette:
    """The app for settings.database_url, which must be set (serve.py resolves it)."""
    assert settings.database_url, "create_app needs a database URL"
    database = Database(settings.database_url, settings.pool_size)
    graphql = AllocationGraphQL(database, settings)

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
        yield
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
    app = AllocationApp(
        routes=routes,
        middleware=[
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
        ],
        lifespan=lifespan,
    )
    app.state.database = database
    return app
