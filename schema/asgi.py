"""An import string for uvicorn, so it can run several worker processes:

    DATABASE_URL=postgresql://... uvicorn schema.asgi:create --factory --workers 2

Each worker builds its own app (and engine and pool) from the environment. Unlike
`make run` (schema/serve.py) this starts no embedded PostgreSQL, applies no migrations
and loads no demo data: DATABASE_URL must name a database already at the newest
migration. The load tests (tests/load/) and `make soak` start the server this way.
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette

from schema.app import create_app
from schema.settings import Settings


def create() -> Starlette:
    settings = Settings()
    if not settings.database_url:
        raise RuntimeError("schema.asgi needs DATABASE_URL (a migrated database)")
    # uvicorn configures only its own loggers; the app's (services.retry's line per
    # internal retry, strawberry.execution's tracebacks) go to stderr, tagged by process.
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )
    return create_app(settings)
