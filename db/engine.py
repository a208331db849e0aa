"""SQLAlchemy engines for tools and tests, and the migration runner."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from db.database import Database

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


def asyncpg_url(url: str) -> str:
    """Accept the usual postgres:// and postgresql:// spellings; we talk asyncpg."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """SQLAlchemy, for the tools, the benchmarks' set-up and the tests (the request path
    uses db.database): each checkout pings, so a tool survives a restarted server."""
    options.setdefault("pool_size", 10)
    options.setdefault("max_overflow", 10)
    options.setdefault("pool_pre_ping", True)
    return create_async_engine(asyncpg_url(url), **options)


def alembic_config(url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.attributes["url"] = asyncpg_url(url)
    return config


@functools.cache
def head_revision() -> str | None:
    """The newest migration in db/migrations."""
    return ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_current_head()


async def migrated_to(database: Database) -> str | None:
    """The migration the database is at (None before the first one)."""
    async with database.session() as session:
        try:
            found = await session.fetchval("SELECT version_num FROM alembic_version")
        except asyncpg.UndefinedTableError:
            return None
    return found if isinstance(found, str) else None


def upgrade_to_head(url: str) -> None:
    """Bring the database to the newest migration (Alembic's env runs its own loop)."""
    command.upgrade(alembic_config(url), "head")


async def migrate(url: str) -> None:
    """upgrade_to_head from inside a running event loop."""
    await asyncio.to_thread(upgrade_to_head, url)
