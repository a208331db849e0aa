"""The ASGI application: GraphQL at /graphql, health probes, one engine per process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL

from db.engine import create_engine, current_revision, head_revision
from db.repositories import SqlUnitOfWork
from resolvers.context import Context
from schema.root import build_schema
from schema.settings import Settings


class AllocationGraphQL(GraphQL[Context, None]):
    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        super().__init__(
            build_schema(settings), graphql_ide="graphiql" if settings.graphiql else None
        )
        self.engine = engine

    async def get_context(self, request: Any, response: Any) -> Context:
        return Context(self.engine, lambda: SqlUnitOfWork(self.engine), request, response)


def create_app(settings: Settings) -> Starlette:
    """The app for settings.database_url, which must be set (serve.py resolves it)."""
    assert settings.database_url, "create_app needs a database URL"
    engine = create_engine(settings.database_url, pool_size=settings.pool_size)
    graphql = AllocationGraphQL(engine, settings)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        """Ready when the database answers and its schema is at the newest migration."""
        try:
            at = await current_revision(engine)
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
        await engine.dispose()

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ],
        lifespan=lifespan,
    )
    app.state.engine = engine
    return app
