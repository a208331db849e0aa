"""An import string for uvicorn, so it can run several worker processes:

    DATABASE_URL=postgresql://... uvicorn schema.asgi:create --factory --workers 2

Each worker builds its own app (and engine and pool) from the environment. Unlike
`make run` (schema/serve.py) this starts no embedded PostgreSQL, applies no migrations
and loads no demo data: DATABASE_URL must name a database already at the newest
migration. The load tests (tests/load/) and `make soak` start the server this way.
"""

from __future__ import annotations

import logging
import logging.config

from starlette.applications import Starlette

from schema.app import create_app
from schema.logs import logging_config
from schema.settings import Settings


def create() -> Starlette:
    settings = Settings()
    if not settings.database_url:
        raise RuntimeError("schema.asgi needs DATABASE_URL (a migrated database)")
    # uvicorn has configured its own loggers by now: every line, the app's (services.retry's
    # per internal retry, strawberry.execution's tracebacks) and uvicorn's, goes to stderr
    # tagged by process and request; the access lines only if uvicorn was to write them.
    access_log = bool(logging.getLogger("uvicorn.access").handlers)
    logging.config.dictConfig(
        logging_config(settings.log_level, process=True, access_log=access_log)
    )
    return create_app(settings)
