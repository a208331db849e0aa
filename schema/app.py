"""The ASGI application: GraphQL at /graphql, health probes, one engine per process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL

from db.engine import create_engine
from db.repositories import SqlUnitOfWork
from resolvers.context import Context
from schema.root import build_schema


class AllocationGraphQL(GraphQL[Context, None]):
    def __init__(self, engine: AsyncEngine, graphiql: bool) -> None:
        super().__init__(build_schema(), graphql_ide="graphiql" if graphiql else None)
        self.engine = engine

    async def get_context(self, request: Any, response: Any) -> Context:
        return Context(self.engine, lambda: SqlUnitOfWork(self.engine), request, response)


def create_app(database_url: str, *, graphiql: bool = True, pool_size: int = 10) -> Starlette:
    engine = create_engine(database_url, pool_size=pool_size)
    graphql = AllocationGraphQL(engine, graphiql)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # any failure to reach the database means not ready
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ready"})

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
