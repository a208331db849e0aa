"""Probes and CORS, as an SPA deployment needs them."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import AppClient


async def test_healthz_answers_while_the_process_is_up(app_client: AppClient) -> None:
    async with app_client() as http:
        response = await http.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_is_ready_only_when_migrations_are_at_head(
    app_client: AppClient,
    engine: AsyncEngine,
) -> None:
    async with app_client() as http:
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"

        async with engine.begin() as conn:
            head = await conn.scalar(text("SELECT version_num FROM alembic_version"))
            await conn.execute(text("UPDATE alembic_version SET version_num = 'older'"))
        try:
            behind = await http.get("/readyz")
        finally:
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": head})
    assert behind.status_code == 503
    assert behind.json() == {"status": "migrations pending", "database": "older", "head": head}


async def test_readyz_is_unavailable_when_the_database_is_unreachable(
    app_client: AppClient,
) -> None:
    unreachable = "postgresql://nobody@127.0.0.1:1/none"
    async with app_client(database_url=unreachable) as http:
        response = await http.get("/readyz")
    assert (response.status_code, response.json()) == (503, {"status": "database unavailable"})


async def test_cors_allows_only_the_configured_origins(app_client: AppClient) -> None:
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    async with app_client(cors_origins=["http://localhost:5173"]) as http:
        allowed = await http.options(
            "/graphql", headers={"origin": "http://localhost:5173", **preflight}
        )
        refused = await http.options(
            "/graphql", headers={"origin": "http://evil.example", **preflight}
        )
        simple = await http.post(
            "/graphql",
            json={"query": "{ items { totalCount } }"},
            headers={"origin": "http://localhost:5173"},
        )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert simple.headers["access-control-allow-origin"] == "http://localhost:5173"
