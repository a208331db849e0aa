"""Open mode (AUTH=open) serves this machine alone (SPEC 7, "Modes"): it will not start on
a HOST that is not loopback, and it refuses requests addressed to another name (DNS
rebinding) or coming from another machine, with 403 LOOPBACK_ONLY."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.embedded import DATA_ROOT
from schema import serve as serve_module
from schema.app import create_app
from schema.loopback import UnsafeSettingsError, host_of, is_loopback
from schema.settings import Settings
from tests.conftest import AppClient

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "host", ["localhost", "LOCALHOST", "localhost.", "127.0.0.1", "127.8.9.10", "::1", "[::1]"]
)
def test_loopback_names(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "::", "", "192.168.1.20", "evil.example", "localhost.evil.example",
             "127.0.0.1.nip.io", "[::2]"],
)  # fmt: skip
def test_names_that_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


@pytest.mark.parametrize(
    ("header", "host"),
    [("localhost:8000", "localhost"), ("[::1]:8000", "[::1]"), ("127.0.0.1", "127.0.0.1"),
     ("[::1]", "[::1]"), ("evil.example:80", "evil.example")],
)  # fmt: skip
def test_the_host_of_a_host_header_leaves_out_the_port(header: str, host: str) -> None:
    assert host_of(header) == host


# -- requests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1:8000", "[::1]:8000", "127.0.0.2"])
async def test_open_mode_answers_requests_to_a_loopback_name(
    client: httpx.AsyncClient, host: str
) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ items { totalCount } }"}, headers={"host": host}
    )

    assert response.status_code == 200
    assert response.json()["data"] == {"items": {"totalCount": 0}}


@pytest.mark.parametrize("path", ["/graphql", "/healthz"])
async def test_open_mode_refuses_a_request_addressed_to_another_name(
    client: httpx.AsyncClient, engine: AsyncEngine, path: str
) -> None:
    # What a page of evil.example sends once its name points at 127.0.0.1 (DNS rebinding).
    response = await client.post(
        path,
        json={"query": 'mutation { createItem(input: {sku: "X", name: "X"}) { item { sku } } }'},
        headers={"host": "evil.example:8000"},
    )

    assert response.status_code == 403
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "LOOPBACK_ONLY"}
    assert "evil.example" in error["message"]
    async with engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM items")) == 0


async def test_open_mode_refuses_a_request_from_another_machine(
    database_url: str, engine: AsyncEngine
) -> None:
    app = create_app(Settings(_env_file=None, database_url=database_url, auth="open"))
    transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 50000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            response = await http.get("/healthz")
    finally:
        await app.state.database.close()

    assert response.status_code == 403
    assert response.json()["errors"][0]["extensions"] == {"code": "LOOPBACK_ONLY"}


async def test_required_mode_answers_any_host(app_client: AppClient) -> None:
    async with app_client(auth="required") as http:
        response = await http.get("/healthz", headers={"host": "allocation.example.com"})

    assert response.status_code == 200


# -- start -------------------------------------------------------------------------------------


def test_no_app_is_made_for_open_mode_on_a_host_that_is_not_loopback(database_url: str) -> None:
    settings = Settings(_env_file=None, database_url=database_url, auth="open", host="0.0.0.0")

    with pytest.raises(UnsafeSettingsError, match=r"HOST is '0\.0\.0\.0'"):
        create_app(settings)


def test_open_mode_warns_when_the_app_is_made(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        create_app(Settings(_env_file=None, database_url=database_url, auth="open"))

    assert any(
        "AUTH=open" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


# uvicorn logs this once the app has started, just before it accepts connections.
SERVING = "Application startup complete"


def server_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "AUTH", "HOST"}}
    env.update(LOAD_DEMO_DATA="false", LOG_LEVEL="info", **values)
    return env


def serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`make run`'s entry, run to its end."""
    command = [sys.executable, "-m", "schema.serve"]
    return subprocess.run(command, check=False, cwd=ROOT, env=env, capture_output=True, text=True)


def test_make_run_in_open_mode_exits_before_listening_on_a_host_that_is_not_loopback() -> None:
    port = free_port()
    name = f"test-refused-{os.getpid()}"
    # No DATABASE_URL: open by default; "" also outweighs a DATABASE_URL in a .env file.
    env = server_env(HOST="0.0.0.0", PORT=str(port), DATABASE_URL="", EMBEDDED_DATA=name)

    run = serve(env)

    assert run.returncode != 0
    assert "HOST is '0.0.0.0'" in run.stderr
    assert SERVING not in run.stderr + run.stdout
    assert not listening(port)
    assert not (DATA_ROOT / name).exists(), "it must stop before starting a database"


def test_make_run_with_auth_open_and_a_database_url_exits_too(database_url: str) -> None:
    port = free_port()
    env = server_env(HOST="0.0.0.0", PORT=str(port), DATABASE_URL=database_url, AUTH="open")

    run = serve(env)

    assert run.returncode != 0
    assert "AUTH=open" in run.stderr
    assert SERVING not in run.stderr + run.stdout
    assert not listening(port)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_the_asgi_factory_in_open_mode_exits_before_listening_on_a_host_that_is_not_loopback(
    database_url: str, workers: str
) -> None:
    port = free_port()
    env = server_env(HOST="0.0.0.0", DATABASE_URL=database_url, AUTH="open")
    command = [
        sys.executable, "-m", "uvicorn", "schema.asgi:create", "--factory",
        "--host", "0.0.0.0", "--port", str(port), "--workers", workers,
    ]  # fmt: skip

    # The timeout only guards against a supervisor that would start the worker again and
    # again (a worker exiting with another code than uvicorn's STARTUP_FAILURE).
    run = subprocess.run(
        command, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )

    assert "HOST is '0.0.0.0'" in run.stderr
    assert SERVING not in run.stderr + run.stdout
    assert not listening(port)
    if workers == "1":
        assert run.returncode != 0
    else:
        # uvicorn's supervisor stops once a worker fails to start, but exits with 0.
        assert "failed to start, stopping the parent process" in run.stderr


def test_make_run_hands_its_mode_to_several_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers read their settings from the environment, where serve.py has put the
    embedded database's URL: without AUTH beside it they would require credentials."""
    seen: dict[str, str | None] = {}

    @contextlib.contextmanager
    def embedded(_: Settings) -> Iterator[str]:
        yield "postgresql://postgres@/postgres?host=/nowhere"

    def run(app: object, **options: object) -> None:
        seen.update(app=str(app), auth=os.environ.get("AUTH"))
        seen["database_url"] = os.environ.get("DATABASE_URL")

    for name in ("DATABASE_URL", "AUTH"):
        monkeypatch.setenv(name, "")  # so that monkeypatch puts back what was there
        monkeypatch.delenv(name)
    monkeypatch.setenv("WORKERS", "2")
    monkeypatch.setenv("LOAD_DEMO_DATA", "false")
    monkeypatch.setattr(serve_module, "database", embedded)
    monkeypatch.setattr(serve_module, "upgrade_to_head", lambda url: None)
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # leave pytest's SIGTERM be
    monkeypatch.setattr(uvicorn, "run", run)

    serve_module.main()

    assert seen == {
        "app": "schema.asgi:create",
        "auth": "open",
        "database_url": "postgresql://postgres@/postgres?host=/nowhere",
    }
