"""An import string for uvicorn, so it can run several worker processes:

    DATABASE_URL=postgresql://... uvicorn schema.asgi:create --factory --workers 2

Each worker builds its own app (and engine and pool) from the environment. Unlike
`make run` (schema/serve.py) this starts no embedded PostgreSQL, applies no migrations
and loads no demo data: DATABASE_URL must name a database already at the newest
migration. The load tests (tests/load/) and `make soak` start the server this way.

With AUTH=open (the default only without DATABASE_URL) it exits before listening when
HOST is not loopback. uvicorn's `--host` is not HOST and the app cannot see it: give the
two the same value (open mode also refuses requests from other machines, whatever
uvicorn was bound to).
"""

from __future__ import annotations

import logging
import logging.config
import sys

from starlette.applications import Starlette
from uvicorn.config import STARTUP_FAILURE

from schema.app import create_app, freeze_startup_objects
from schema.logs import logging_config
from schema.loopback import unsafe_open_mode
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
    refusal = unsafe_open_mode(settings)
    if refusal is not None:
        logging.getLogger("allocation").error(refusal)
        # uvicorn's own code for a worker that cannot start: the supervisor of several
        # workers then stops instead of starting it again and again.
        sys.exit(STARTUP_FAILURE)
    app = create_app(settings)
    freeze_startup_objects()
    return app
