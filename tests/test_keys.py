"""`make api-key`, `make api-key-revoke` and `make api-keys` (schema/keys.py), on the test
database through DATABASE_URL, and on an embedded database that `make run` is serving."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.embedded import DATA_ROOT
from schema import keys
from services.ports import UnitOfWorkFactory
from tests.conftest import AppClient
from tests.service import helpers

ROOT = Path(__file__).resolve().parent.parent
SECRET = re.compile(r"alloc_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
RECEIVE = """mutation { adjustInventory(input: {sku: "BOLT", lotNumber: "L1", locationCode: "A-01",
  quantity: 5}) { adjustment { actor } errors { code } } }"""


def environment(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "AUTH", "MAKEFLAGS"}}
    env.update(values)
    return env


async def make(
    target: str, env: dict[str, str], **variables: str
) -> subprocess.CompletedProcess[str]:
    """Runs `make <target> NAME=... SCOPES=...` as a user would, with this Python."""
    command = ["make", "--silent", "--no-print-directory", target,
               f"BIN={Path(sys.executable).parent}"]  # fmt: skip
    command += [f"{name}={value}" for name, value in variables.items()]
    return await asyncio.to_thread(
        subprocess.run, command, check=False, cwd=ROOT, env=env, capture_output=True, text=True
    )


async def receive(http: httpx.AsyncClient, secret: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {secret}"}
    return await http.post("/graphql", json={"query": RECEIVE}, headers=headers)


async def test_a_key_made_listed_and_revoked_with_make(
    database_url: str, engine: AsyncEngine, app_client: AppClient, uow: UnitOfWorkFactory
) -> None:
    await helpers.item(uow, "BOLT")
    await helpers.location(uow, "A-01")
    env = environment(DATABASE_URL=database_url)

    made = await make("api-key", env, NAME="acme-erp", SCOPES="inventory:write orders:read")

    assert made.returncode == 0, made.stderr
    lines = made.stdout.splitlines()
    secret = lines[-1]
    assert SECRET.fullmatch(secret), lines  # the secret, alone, on the last line
    assert made.stdout.count(secret[19:]) == 1
    assert secret[19:] not in made.stderr
    async with engine.connect() as connection:
        stored = (await connection.execute(text("SELECT * FROM api_keys"))).one()
    assert secret not in str(tuple(stored))  # only its hash is kept
    assert stored.scopes == ["inventory:write", "orders:read"]

    async with app_client(auth="required") as http:
        used = await receive(http, secret)
        listed = await make("api-keys", env)
        revoked = await make("api-key-revoke", env, NAME="acme-erp")
        refused = await receive(http, secret)

    assert used.json()["data"]["adjustInventory"] == {
        "adjustment": {"actor": "acme-erp"},
        "errors": [],
    }
    assert listed.returncode == 0
    assert "acme-erp" in listed.stdout
    assert secret[:18] in listed.stdout  # the prefix, which logs name it by
    assert "inventory:write orders:read" in listed.stdout
    assert secret[19:] not in listed.stdout
    assert stored.secret_hash.hex() not in listed.stdout
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in revoked.stdout
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}

    again = await make("api-key", env, NAME="acme-erp", SCOPES="admin")
    assert again.returncode != 0
    assert "DUPLICATE" in again.stderr
    assert again.stdout == ""


# -- refusals, in this process -----------------------------------------------------------------


@pytest.fixture
def cli(database_url: str, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """schema.keys.main in this process, on the test database (emptied by `engine`)."""
    monkeypatch.setenv("DATABASE_URL", database_url)


async def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(keys.main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", ["system", "anonymous"])
async def test_reserved_names_are_refused(
    cli: None, capsys: pytest.CaptureFixture[str], engine: AsyncEngine, name: str
) -> None:
    code, out, err = await run(capsys, "create", name, "admin")

    assert code == 1
    assert err.startswith("error: INVALID_INPUT:")
    assert "reserved" in err
    assert out == ""
    async with engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM api_keys")) == 0


async def test_a_name_is_never_used_twice_even_after_revocation(
    cli: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (await run(capsys, "create", "acme", "orders:read"))[0] == 0
    assert (await run(capsys, "revoke", "acme"))[0] == 0

    code, out, err = await run(capsys, "create", "acme", "orders:read")

    assert code == 1
    assert "DUPLICATE" in err
    assert "never used twice" in err
    assert out == ""


@pytest.mark.parametrize(
    "name", ["", "Acme", "acme erp", "-acme", "acme/erp", "ä", "a" * 65, "acme\n"]
)
async def test_a_name_that_is_not_a_short_plain_identifier_is_refused(
    cli: None, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code, _, err = await run(capsys, "create", "--", name, "orders:read")

    assert code == 1
    assert "INVALID_INPUT" in err
    assert "is not a key name" in err


@pytest.mark.parametrize("scopes", [[], ["orders:delete"], ["orders:read", "ORDERS:WRITE"]])
async def test_unknown_or_missing_scopes_are_refused(
    cli: None, capsys: pytest.CaptureFixture[str], engine: AsyncEngine, scopes: list[str]
) -> None:
    code, _, err = await run(capsys, "create", "acme", *scopes)

    assert code == 1
    assert "INVALID_INPUT" in err
    assert "orders:read" in err  # it lists the scopes there are
    async with engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM api_keys")) == 0


async def test_revoking_a_key_that_does_not_exist_says_so(
    cli: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = await run(capsys, "revoke", "nobody")

    assert code == 1
    assert "NOT_FOUND" in err


async def test_revoking_twice_keeps_the_first_time(
    cli: None, capsys: pytest.CaptureFixture[str], engine: AsyncEngine
) -> None:
    await run(capsys, "create", "acme", "admin")
    await run(capsys, "revoke", "acme")
    async with engine.connect() as connection:
        first = await connection.scalar(text("SELECT revoked_at FROM api_keys"))

    code, out, _ = await run(capsys, "revoke", "acme")

    assert code == 0
    assert "revoked already" in out
    async with engine.connect() as connection:
        assert await connection.scalar(text("SELECT revoked_at FROM api_keys")) == first


async def test_scopes_are_kept_once_each_in_the_order_given(
    cli: None, capsys: pytest.CaptureFixture[str], engine: AsyncEngine
) -> None:
    code, _, _ = await run(capsys, "create", "acme", "orders:write", "orders:read", "orders:write")

    assert code == 0
    async with engine.connect() as connection:
        scopes = await connection.scalar(text("SELECT scopes FROM api_keys"))
    assert scopes == ["orders:write", "orders:read"]


async def test_an_empty_list_says_how_to_make_a_key(
    cli: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await run(capsys, "list")

    assert code == 0
    assert "make api-key NAME=" in out


# -- the embedded database, shared with `make run` ---------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_keys_work_on_the_embedded_database_while_make_run_serves_it(
    tmp_path: Path,
) -> None:
    name = f"test-keys-{os.getpid()}"
    port = free_port()
    env = environment(
        DATABASE_URL="",  # outweighs one in a .env file: the embedded database
        EMBEDDED_DATA=name,
        PORT=str(port),
        LOAD_DEMO_DATA="true",
        LOG_LEVEL="warning",
        GRAPHIQL="false",
    )
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(  # noqa: ASYNC220 - a real server, watched by polling
        [sys.executable, "-m", "schema.serve"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            await _until_ready(http, serve)

            made = await make("api-key", env, NAME="forklift", SCOPES="admin")
            assert made.returncode == 0, made.stderr
            secret = made.stdout.splitlines()[-1]
            # The CLI let go of the database when it ended; `make run` still has it.
            assert (await http.get("/readyz")).status_code == 200
            query = {"query": '{ item(sku: "BRASS-SCREW") { sku } }'}
            used = await http.post(
                "/graphql", json=query, headers={"authorization": f"Bearer {secret}"}
            )

            revoked = await make("api-key-revoke", env, NAME="forklift")
            assert revoked.returncode == 0, revoked.stderr
            refused = await http.post(
                "/graphql", json=query, headers={"authorization": f"Bearer {secret}"}
            )
            anonymous = await http.post("/graphql", json=query)

        assert used.json()["data"] == {"item": {"sku": "BRASS-SCREW"}}
        assert refused.status_code == 401  # open mode checks a credential that is sent
        assert anonymous.json()["data"] == {"item": {"sku": "BRASS-SCREW"}}
    finally:
        serve.send_signal(signal.SIGTERM)
        await asyncio.to_thread(serve.wait)
        log.close()
        pgdata = DATA_ROOT / name
        stopped = not (pgdata / "postmaster.pid").exists()
        shutil.rmtree(pgdata, ignore_errors=True)
    assert stopped, "the embedded server outlived make run"


async def _until_ready(http: httpx.AsyncClient, serve: subprocess.Popen[bytes]) -> None:
    """Polls /readyz until the server answers, failing if it exits first."""
    while True:
        assert serve.poll() is None, "make run exited"
        try:
            if (await http.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
