"""SPEC 7's edge on the real server (uvicorn with httptools): 413 before a declared body
is even sent, a chunked body refused, X-Request-Id in the log lines in both ways the
server is started, and unsafe CORS settings refused at start."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.load.server import ROOT, free_port

LIMIT = 4096
# Guards against a hang when something is broken, not timings: every answer here comes
# in milliseconds.
HANG_GUARD = 60.0
SERVE = [sys.executable, "-m", "schema.serve"]


@dataclass
class Server:
    port: int
    log: Path
    pid: int

    def lines_of(self, request_id: str) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if f"[{request_id}]" in line]

    def exchange(self, raw: bytes) -> tuple[bytes, bytes]:
        """Sends raw HTTP/1.1 and reads until the server closes the connection: the
        answer's head and body."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=HANG_GUARD) as sock:
            sock.sendall(raw)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        return head, body

    def get(self, path: str, request_id: str) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", headers={"X-Request-Id": request_id}
        )
        with urllib.request.urlopen(request, timeout=HANG_GUARD) as response:
            status: int = response.status
            return status


@contextlib.contextmanager
def running(command: list[str], env: dict[str, str], log: Path) -> Iterator[Server]:
    port = free_port()
    # schema.serve's settings and uvicorn's command line both take the port from there.
    env = {**os.environ, **env, "PORT": str(port), "UVICORN_PORT": str(port)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(port, process, log)
        yield Server(port, log, process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=HANG_GUARD)


def _wait_until_up(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Polls /healthz while the server starts (a guard against a hang, not a timing)."""
    for _ in range(600):
        assert process.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except OSError:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.1)
    raise AssertionError(f"the server did not come up:\n{log.read_text()}")


@pytest.fixture(scope="module")
def served(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`python -m schema.serve`, as `make run` starts it, with a body limit of LIMIT."""
    env = {
        "DATABASE_URL": database_url, "LOAD_DEMO_DATA": "false", "GRAPHIQL": "false",
        "LOG_LEVEL": "info", "MAX_BODY_BYTES": str(LIMIT), "AUTH": "open",
    }  # fmt: skip
    with running(SERVE, env, tmp_path_factory.mktemp("serve") / "server.log") as server:
        yield server


def test_a_declared_body_over_the_limit_is_refused_before_any_of_it_is_sent(
    served: Server,
) -> None:
    """Only the head is sent, announcing 50 MB: the 413 comes at once, and the server
    closes the connection rather than wait for (or read and discard) the body."""
    head, body = served.exchange(
        b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 50000000\r\nX-Request-Id: edge-declared\r\n\r\n"
    )

    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"\r\nconnection: close" in head.lower()
    assert b"\r\nx-request-id: edge-declared" in head.lower()
    assert b'"code":"BODY_TOO_LARGE"' in body


def test_a_chunked_body_over_the_limit_is_refused(served: Server) -> None:
    chunk = b"%x\r\n%s\r\n" % (1000, b" " * 1000)
    head, body = served.exchange(
        b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 10 + b"0\r\n\r\n"
    )

    assert head.startswith(b"HTTP/1.1 413 ")
    assert b'"code":"BODY_TOO_LARGE"' in body


def test_a_body_within_the_limit_is_served_on_the_same_server(served: Server) -> None:
    query = b'{"query": "{ __typename }"}'
    head, body = served.exchange(
        b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(query), query)
    )

    assert head.startswith(b"HTTP/1.1 200 ")
    assert b'"__typename":"Query"' in body


def test_the_log_lines_of_a_request_carry_its_id(served: Server) -> None:
    served.exchange(
        b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 50000000\r\n"
        b"X-Request-Id: edge-logged\r\n\r\n"
    )
    assert served.get("/healthz", "edge-probe") == 200

    refused = served.lines_of("edge-logged")
    assert any(" INFO schema.edge [edge-logged]: " in line for line in refused), refused
    assert any(" uvicorn.access [edge-logged]: " in line and "413" in line for line in refused)
    assert not any("Traceback" in line for line in served.log.read_text().splitlines())
    [probe] = served.lines_of("edge-probe")
    assert '"GET /healthz HTTP/1.1" 200' in probe
    started = [line for line in served.log.read_text().splitlines() if "startup complete" in line]
    assert started
    assert all("[-]" in line for line in started)


@pytest.mark.parametrize("access_log", [True, False], ids=["access log", "no access log"])
def test_schema_asgi_logs_with_the_process_and_request_and_keeps_no_access_log(
    database_url: str, tmp_path: Path, access_log: bool
) -> None:
    """`uvicorn schema.asgi:create --factory`, as the load tests start it: the app's log
    format replaces uvicorn's, and --no-access-log still holds."""
    command = [sys.executable, "-m", "uvicorn", "schema.asgi:create", "--factory"]
    if not access_log:
        command.append("--no-access-log")
    env = {"DATABASE_URL": database_url, "LOG_LEVEL": "info", "GRAPHIQL": "false"}
    with running(command, env, tmp_path / "server.log") as server:
        assert server.get("/healthz", "asgi-probe") == 200
        lines = server.lines_of("asgi-probe")
        started = [
            line for line in server.log.read_text().splitlines() if "startup complete" in line
        ]

    assert started
    assert all(re.search(r" \d+ INFO uvicorn.error \[-\]: ", line) for line in started)
    if access_log:
        [line] = lines
        assert re.search(r" \d+ INFO uvicorn.access \[asgi-probe\]: .*GET /healthz", line), line
    else:
        assert lines == []


def test_the_server_refuses_to_start_with_credentials_for_every_origin(tmp_path: Path) -> None:
    env = {
        **os.environ, "CORS_ORIGINS": '["*"]', "CORS_ALLOW_CREDENTIALS": "true",
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
    }  # fmt: skip
    done = subprocess.run(
        SERVE, cwd=ROOT, env=env, capture_output=True, text=True, timeout=HANG_GUARD, check=False
    )

    assert done.returncode != 0
    assert "CORS_ALLOW_CREDENTIALS=true cannot be used with the wildcard origin" in done.stderr
    assert "Traceback" not in done.stderr
