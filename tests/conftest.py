"""Fixtures: a fresh PostgreSQL database for the run, migrated with Alembic.

With TEST_DATABASE_URL the run creates (and afterwards drops) a scratch database
on that server; without it an embedded, throwaway PostgreSQL is started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.database import Database
from db.embedded import embedded_postgres
from db.engine import asyncpg_url, create_engine, upgrade_to_head
from db.repositories import SqlUnitOfWork
from db.tables import Base
from schema.app import create_app
from schema.settings import Settings
from services.ports import UnitOfWorkFactory


async def admin_execute(server_url: str, statement: str) -> None:
    """Run a statement outside a transaction (CREATE/DROP DATABASE) on the server."""
    engine = create_engine(server_url, pool_size=1, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield asyncpg_url(given)
        return
    with embedded_postgres(f"test-{os.getpid()}", throwaway=True) as url:
        yield url


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    name = f"allocation_test_{uuid.uuid4().hex[:8]}"
    asyncio.run(admin_execute(server_url, f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    upgrade_to_head(url)
    yield url
    asyncio.run(admin_execute(server_url, f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture(autouse=True)
async def _empty_tables(request: pytest.FixtureRequest) -> None:
    """Every database test starts from empty tables and fresh id sequences."""
    if "engine" not in request.fixturenames:
        return
    engine: AsyncEngine = request.getfixturevalue("engine")
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await conn.execute(text("ALTER SEQUENCE sales_order_number_seq RESTART"))


@pytest.fixture(scope="session")
async def database(database_url: str) -> AsyncIterator[Database]:
    """The request path's pool (asyncpg), for the use cases under test."""
    database = Database(database_url)
    yield database
    await database.close()


@pytest.fixture
def uow(database: Database) -> UnitOfWorkFactory:
    """Each unit of work on a connection of its own, as concurrent requests have."""
    return lambda: SqlUnitOfWork(database)


AppClient = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def app_client(database_url: str, engine: AsyncEngine) -> AppClient:
    """Opens in-process HTTP to a real ASGI app built with these settings overrides."""

    @contextlib.asynccontextmanager
    async def open_client(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        # With DATABASE_URL set, AUTH defaults to required. These tests are about the API,
        # not credentials, so they act as `anonymous` with every scope; the credential
        # tests (tests/api/test_credentials.py and others) ask for auth="required".
        values: dict[str, Any] = {
            "database_url": database_url, "pool_size": 5, "auth": "open", **overrides
        }  # fmt: skip
        settings = Settings(_env_file=None, **values)
        app = create_app(settings)
        transport = httpx.ASGITransport(app=app)
        try:
            # A loopback name: open mode refuses requests addressed to any other.
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
                yield http
        finally:
            await app.state.authenticator.close()
            await app.state.database.close()

    return open_client


@pytest.fixture
async def client(app_client: AppClient) -> AsyncIterator[httpx.AsyncClient]:
    """In-process HTTP through the real ASGI app (its own engine and pool)."""
    async with app_client() as http:
        yield http


class GraphQLClient:
    """Posts documents with variables and requires HTTP 200, so every test that reads a
    payload's errors also proves they came with a 200 (SPEC 6); `data` also asserts
    there were no GraphQL errors. Tests of other statuses use `http` directly."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def post(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.http.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200, (response.status_code, response.text)
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, **variables: Any) -> dict[str, Any]:
        body = await self.post(query, **variables)
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data


@pytest.fixture
def gql(client: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(client)


@pytest.fixture
async def counted(
    database_url: str, engine: AsyncEngine
) -> AsyncIterator[tuple[GraphQLClient, list[str]]]:
    """A GraphQL client whose app records every statement it sends to the database
    (open, on loopback)."""
    app = create_app(Settings(_env_file=None, database_url=database_url, auth="open"))
    sent: list[str] = []
    app.state.database.on_statement = sent.append
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
        yield GraphQLClient(http), sent
    await app.state.authenticator.close()
    await app.state.database.close()
