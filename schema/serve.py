"""`make run`: database (embedded unless DATABASE_URL), migrations, demo data, server.

Ctrl-C stops uvicorn, then the embedded PostgreSQL, so nothing is left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.config
import os
import signal
import sys
from collections.abc import Iterator

import uvicorn
from pydantic import ValidationError

from db.database import Database
from db.embedded import embedded_postgres
from db.engine import upgrade_to_head
from db.repositories import SqlUnitOfWork
from schema.app import create_app, freeze_startup_objects
from schema.logs import logging_config
from schema.loopback import unsafe_open_mode
from schema.settings import Settings
from services.demo import load_demo_data

log = logging.getLogger("allocation")


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[str]:
    """DATABASE_URL, or the embedded server (started, or joined when another process
    such as a running `make run` holds it: it stops with the last process that holds it)."""
    if settings.database_url:
        yield settings.database_url
    else:
        with embedded_postgres(settings.embedded_data) as url:
            yield url


async def _load_demo(url: str) -> None:
    database = Database(url, size=1)
    try:
        await load_demo_data(lambda: SqlUnitOfWork(database))
    finally:
        await database.close()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    sys.exit(128 + signum)


def main() -> None:
    # uvicorn handles SIGTERM itself, then raises it again once it has shut down;
    # as SystemExit it unwinds through `database`, which stops the embedded server.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        settings = Settings()
    except ValidationError as error:
        # Unsafe or malformed settings stop the server before it starts anything, with
        # what is wrong and no traceback.
        reasons = [
            f"{'.'.join(map(str, e['loc'])).upper() or 'settings'}: {e['msg']}"
            for e in error.errors()
        ]
        sys.exit("schema.serve: not starting. " + "; ".join(reasons))
    logging.config.dictConfig(logging_config(settings.log_level))
    refusal = unsafe_open_mode(settings)
    if refusal is not None:  # before the database starts, let alone the server
        log.error(refusal)
        sys.exit(2)
    with database(settings) as url:
        upgrade_to_head(url)
        if settings.load_demo_data:
            asyncio.run(_load_demo(url))
        log.info("GraphiQL at http://%s:%d/graphql", settings.host, settings.port)
        if settings.workers == 1:
            app = create_app(settings.model_copy(update={"database_url": url}))
            freeze_startup_objects()
            uvicorn.run(
                app, host=settings.host, port=settings.port, log_level=settings.log_level,
                log_config=logging_config(settings.log_level),
            )  # fmt: skip
            return
        # Each worker process builds its own app (and pool) from the environment; AUTH
        # too, since its default would follow the DATABASE_URL now set.
        os.environ["DATABASE_URL"] = url
        os.environ["AUTH"] = settings.auth
        uvicorn.run(
            "schema.asgi:create", factory=True, workers=settings.workers, host=settings.host,
            port=settings.port, log_level=settings.log_level,
            log_config=logging_config(settings.log_level),
        )  # fmt: skip


if __name__ == "__main__":
    main()
