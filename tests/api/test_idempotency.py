"""Idempotent retries (SPEC section 8): a mutation sent with an Idempotency-Key is applied
at most once per credential and key; a repeat gets the first answer again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db import idempotency as stored_keys
from db.api_keys import create_key
from db.database import Database, Session
from schema import idempotency
from services.ports import UnitOfWorkFactory
from tests.api.signing import AUDIENCE, ISSUER, SigningKey, claims, rsa_key, sign, write_jwks
from tests.conftest import AppClient
from tests.service import helpers

RECEIVE = """mutation($qty: Int!) { adjustInventory(input: {sku: "WIDGET", lotNumber: "L1",
  locationCode: "BIN-1", quantity: $qty, reason: "receipt"}) {
  balance { onHand } adjustment { id } errors { code } } }"""
BODY = {"query": RECEIVE, "variables": {"qty": 5}}


async def on_hand(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(
            await conn.scalar(text("SELECT coalesce(sum(on_hand), 0) FROM inventory_balances"))
        )


async def keys(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM idempotency_keys")))


def post(http: httpx.AsyncClient, key: str | None, body: dict[str, Any]) -> Any:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return http.post("/graphql", json=body, headers=headers)


@pytest.fixture
async def stocked(uow: UnitOfWorkFactory, engine: AsyncEngine) -> None:
    await helpers.one_balance(uow, 10)


@pytest.mark.usefixtures("stocked")
async def test_the_same_request_twice_is_applied_once_and_answered_alike(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    first = await post(client, "receipt-7", BODY)
    again = await post(client, "receipt-7", BODY)

    assert first.status_code == again.status_code == 200
    assert first.json()["data"]["adjustInventory"]["balance"] == {"onHand": 15}
    assert again.content == first.content
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert await on_hand(engine) == 15


@pytest.mark.usefixtures("stocked")
async def test_the_same_key_with_another_request_is_refused(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    await post(client, "receipt-7", BODY)
    other = await post(client, "receipt-7", {**BODY, "variables": {"qty": 6}})

    assert other.status_code == 422
    [error] = other.json()["errors"]
    assert error["extensions"] == {"code": "IDEMPOTENCY_KEY_REUSED"}
    assert await on_hand(engine) == 15


@pytest.mark.usefixtures("stocked")
async def test_16_requests_at_once_with_one_key_have_one_effect(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    barrier = asyncio.Barrier(16)

    async def send() -> httpx.Response:
        await barrier.wait()
        response: httpx.Response = await post(client, "together", BODY)
        return response

    answers = await asyncio.gather(*(send() for _ in range(16)))

    assert await on_hand(engine) == 15
    done = [a for a in answers if a.status_code == 200]
    waited_out = [a for a in answers if a.status_code == 409]
    assert len(done) + len(waited_out) == 16
    assert len({a.content for a in done}) == 1  # one answer, given again to the others
    assert sum("idempotent-replayed" not in a.headers for a in done) == 1
    assert all(a.headers["retry-after"] == "1" for a in waited_out)


@pytest.mark.usefixtures("stocked")
async def test_an_answer_lost_after_the_commit_is_given_again_on_the_retry(
    client: httpx.AsyncClient, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first request commits, then its connection is cut (its backend killed) before
    its answer goes out: the client never sees it, and retries."""
    kept = idempotency.end

    async def commit_then_lose_the_connection(context: Any, request: Any, response: Any) -> Any:
        await kept(context, request, response)
        await context.session.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    monkeypatch.setattr(idempotency, "end", commit_then_lose_the_connection)
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the client sees, no answer
        await post(client, "cut", BODY)
    monkeypatch.setattr(idempotency, "end", kept)
    retried = await post(client, "cut", BODY)

    assert retried.headers["idempotent-replayed"] == "true"
    assert retried.json()["data"]["adjustInventory"]["balance"] == {"onHand": 15}
    assert await on_hand(engine) == 15


@pytest.mark.usefixtures("stocked")
async def test_a_connection_lost_before_the_commit_answers_503_and_the_retry_runs(
    client: httpx.AsyncClient, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mutation ran, but its connection is cut before the change and its key commit:
    the answer it made must not go out (it reports a change that never happened)."""
    keep = stored_keys.keep

    async def lose_the_connection(session: Any, claim: Any, outcome: Any) -> None:
        await session.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    monkeypatch.setattr(stored_keys, "keep", lose_the_connection)
    lost = await post(client, "cut", BODY)
    monkeypatch.setattr(stored_keys, "keep", keep)

    assert lost.status_code == 503
    assert lost.headers["retry-after"] == "1"
    [error] = lost.json()["errors"]
    assert error["extensions"] == {"code": "UNAVAILABLE"}
    assert "same Idempotency-Key" in error["message"]
    assert (await on_hand(engine), await keys(engine)) == (10, 0)

    retried = await post(client, "cut", BODY)

    assert "idempotent-replayed" not in retried.headers
    assert retried.json()["data"]["adjustInventory"]["balance"] == {"onHand": 15}
    assert (await on_hand(engine), await keys(engine)) == (15, 1)


@pytest.mark.usefixtures("stocked")
async def test_a_connection_lost_during_the_mutation_is_unavailable_and_not_kept(
    client: httpx.AsyncClient, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cut inside the mutation's savepoint: the answer says UNAVAILABLE, as it would
    without a key, and the key is free for the retry."""
    execute = Session.execute

    async def savepoint_then_lose_the_connection(self: Session, statement: str) -> str:
        done = await execute(self, statement)
        if statement.startswith("SAVEPOINT"):
            await execute(self, "SELECT pg_terminate_backend(pg_backend_pid())")
        return done

    monkeypatch.setattr(Session, "execute", savepoint_then_lose_the_connection)
    lost = await post(client, "cut", BODY)
    monkeypatch.setattr(Session, "execute", execute)

    assert lost.status_code == 200
    assert lost.json()["data"]["adjustInventory"]["errors"] == [{"code": "UNAVAILABLE"}]
    assert (await on_hand(engine), await keys(engine)) == (10, 0)
    retried = await post(client, "cut", BODY)
    assert retried.json()["data"]["adjustInventory"]["balance"] == {"onHand": 15}


@pytest.mark.usefixtures("stocked")
async def test_an_expired_key_runs_again_and_the_purge_deletes_old_keys(
    client: httpx.AsyncClient, engine: AsyncEngine, database: Database
) -> None:
    await post(client, "old", BODY)
    await post(client, "new", BODY)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE idempotency_keys SET expires_at = now() WHERE key = 'old'"))

    again = await post(client, "old", BODY)

    assert "idempotent-replayed" not in again.headers
    assert await on_hand(engine) == 25
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE idempotency_keys SET expires_at = now() WHERE key = 'new'"))
    async with database.session() as session:
        assert await stored_keys.purge(session) == 1
    assert await keys(engine) == 1


@pytest.mark.usefixtures("stocked")
async def test_a_refusal_that_a_retry_cannot_change_is_kept(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    too_much = {**BODY, "variables": {"qty": -50}}  # INSUFFICIENT_STOCK
    first = await post(client, "write-off", too_much)
    await post(client, None, BODY)  # more stock arrives meanwhile
    again = await post(client, "write-off", too_much)

    assert first.json()["data"]["adjustInventory"]["errors"] == [{"code": "INSUFFICIENT_STOCK"}]
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"


@pytest.mark.usefixtures("stocked")
async def test_the_directive_gives_a_key_as_the_header_does(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    marked = RECEIVE.replace('reason: "receipt"})', 'reason: "receipt"}) @idempotent(key: "d-1")')
    assert "@idempotent" in marked
    body = {"query": marked, "variables": {"qty": 5}}
    first = await post(client, None, body)
    again = await post(client, "d-1", body)
    clash = await post(client, "d-2", body)

    assert first.json()["data"]["adjustInventory"]["errors"] == []
    assert again.headers["idempotent-replayed"] == "true"
    assert clash.status_code == 400
    assert await on_hand(engine) == 15


@pytest.mark.parametrize("key", ["", "x" * 256, "é", "tab\there"])
@pytest.mark.usefixtures("stocked")
async def test_a_key_that_is_not_1_to_255_printable_ascii_is_refused(
    client: httpx.AsyncClient, engine: AsyncEngine, key: str
) -> None:
    response = await client.post("/graphql", json=BODY, headers={b"Idempotency-Key": key.encode()})

    assert response.status_code == 400
    assert await on_hand(engine) == 10


@pytest.mark.usefixtures("stocked")
async def test_queries_ignore_the_key_and_two_mutations_may_not_share_one(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    query = await post(client, "q", {"query": "{ items(first: 1) { totalCount } }"})
    two = RECEIVE.replace("mutation($qty: Int!) {", "mutation($qty: Int!) { a: ").replace(
        "} } }", '} } b: createItem(input: {sku: "X", name: "X"}) { errors { code } } }'
    )
    both = await post(client, "two", {"query": two, "variables": {"qty": 5}})

    assert query.status_code == 200
    assert (
        "idempotent-replayed" not in (await post(client, "q", {"query": "{ __typename }"})).headers
    )
    assert both.status_code == 400
    assert await keys(engine) == 0
    assert await on_hand(engine) == 10


async def test_the_server_purges_expired_keys_while_it_serves(
    app_client: AppClient, engine: AsyncEngine, database_url: str
) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO idempotency_keys (owner, key, request_digest, status, media_type,"
                " body, expires_at) VALUES ('o', 'k', '', 200, 'application/json', '', now())"
            )
        )
    async with app_client() as http:
        app = http._transport.app  # type: ignore[attr-defined]
        async with app.router.lifespan_context(app):
            for _ in range(600):  # the first purge runs at start: wait for it (a hang guard)
                if await keys(engine) == 0:
                    break
                await asyncio.sleep(0.1)
    assert await keys(engine) == 0


# -- keys are the credential's own -------------------------------------------------------------


@pytest.fixture(scope="module")
def provider() -> SigningKey:
    return rsa_key("provider-1")


@pytest.fixture
async def required(
    app_client: AppClient, provider: SigningKey, tmp_path: Path, stocked: None
) -> AsyncIterator[httpx.AsyncClient]:
    """A server that takes only API keys and the test provider's access tokens."""
    jwks = write_jwks(tmp_path / "jwks.json", provider)
    settings = {"jwt_jwks": str(jwks), "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}
    async with app_client(auth="required", **settings) as http:
        yield http


def token(provider: SigningKey, subject: str, scope: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + sign(provider, claims(sub=subject, scope=scope))}


def keyed(key: str, credential: dict[str, str]) -> dict[str, str]:
    return {"Idempotency-Key": key, **credential}


async def test_the_same_key_from_two_credentials_is_two_changes(
    required: httpx.AsyncClient, provider: SigningKey, database: Database, engine: AsyncEngine
) -> None:
    """Keys are per credential: alice's token, bob's token and an API key named alice
    may all use `receipt-1`, and each repeat is answered with its own first answer."""
    async with database.session() as session:
        _, secret = await create_key(session, "alice", ["inventory:write"])
    credentials = [
        token(provider, "alice", "inventory:write"),
        token(provider, "bob", "inventory:write"),
        {"Authorization": f"Bearer {secret}"},
    ]
    first = [
        await required.post("/graphql", json=BODY, headers=keyed("receipt-1", c))
        for c in credentials
    ]
    again = [
        await required.post("/graphql", json=BODY, headers=keyed("receipt-1", c))
        for c in credentials
    ]

    balances = [a.json()["data"]["adjustInventory"]["balance"] for a in first]
    assert balances == [{"onHand": 15}, {"onHand": 20}, {"onHand": 25}]
    assert ["idempotent-replayed" in a.headers for a in first] == [False] * 3
    assert [a.headers.get("idempotent-replayed") for a in again] == ["true"] * 3
    assert [a.content for a in again] == [a.content for a in first]
    assert await on_hand(engine) == 25


async def test_forbidden_is_not_kept_and_the_retry_with_the_scope_runs(
    required: httpx.AsyncClient, provider: SigningKey, engine: AsyncEngine
) -> None:
    """A token lacking the scope is refused; the same subject with a new token that has it
    retries with the same key, and the change is made."""
    denied = await required.post(
        "/graphql", json=BODY, headers=keyed("receipt-2", token(provider, "alice", "orders:read"))
    )
    allowed = await required.post(
        "/graphql",
        json=BODY,
        headers=keyed("receipt-2", token(provider, "alice", "inventory:write")),
    )

    assert denied.json()["data"]["adjustInventory"]["errors"] == [{"code": "FORBIDDEN"}]
    assert "idempotent-replayed" not in allowed.headers
    assert allowed.json()["data"]["adjustInventory"]["balance"] == {"onHand": 15}
    assert (await on_hand(engine), await keys(engine)) == (15, 1)
