"""The provider's keys fetched from an https URL (SPEC 7): a real TLS server on this
machine with a certificate from a test CA (trustme), which counts its requests.

An unknown `kid` fetches the keys again at most once per REFETCH_INTERVAL, and never
makes the token match another key; the fetch does not block the event loop.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import trustme
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from schema.app import create_app
from schema.settings import Settings
from schema.tokens import KEYS_MAX_AGE, REFETCH_INTERVAL, AccessTokens, ProviderKeys, TokenRefused
from services.ports import UnitOfWorkFactory
from tests.api.signing import AUDIENCE, ISSUER, SigningKey, claims, jwks, rsa_key, sign
from tests.service import helpers


class Provider:
    """What the JWKS URL serves (`keys`, or `status` when failing) and the requests it got."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys: list[SigningKey] = list(keys)
        self.status = 200
        self.requests: list[str] = []
        self.answering = threading.Event()  # cleared: requests wait (to hold a fetch open)
        self.answering.set()
        self.on_request: Callable[[], object] = lambda: None  # called in the server's thread


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def provider(ca: trustme.CA) -> Iterator[tuple[Provider, str]]:
    served = Provider()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.requests.append(self.path)
            served.on_request()
            served.answering.wait()
            body = json.dumps(jwks(*served.keys)).encode()
            self.send_response(served.status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f"https://localhost:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        served.answering.set()
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def trusting(ca: trustme.CA) -> httpx.AsyncHTTPTransport:
    """A transport that trusts the test CA (and nothing else)."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return httpx.AsyncHTTPTransport(verify=context)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def checked(
    provider: tuple[Provider, str], trusting: httpx.AsyncHTTPTransport
) -> AsyncIterator[tuple[AccessTokens, Provider, Clock]]:
    served, url = provider
    clock = Clock()
    keys = ProviderKeys(url, transport=trusting, clock=clock)
    tokens = AccessTokens(keys, issuer=ISSUER, audience=AUDIENCE)
    yield tokens, served, clock
    await tokens.close()


async def test_the_keys_are_fetched_once_for_tokens_of_known_keys(
    checked: tuple[AccessTokens, Provider, Clock],
) -> None:
    tokens, served, _ = checked
    key = rsa_key("k1")
    served.keys = [key]

    for _ in range(3):
        assert (await tokens.credential(sign(key, claims()))).actor == "alice"

    assert len(served.requests) == 1
    assert served.requests == ["/.well-known/jwks.json"]


async def test_an_unknown_kid_refetches_at_most_once_per_interval(
    checked: tuple[AccessTokens, Provider, Clock],
) -> None:
    tokens, served, clock = checked
    old, rotated = rsa_key("old"), rsa_key("new")
    served.keys = [old]
    await tokens.credential(sign(old, claims()))
    clock.now += REFETCH_INTERVAL  # long enough since that first fetch

    # The provider has not published the new key yet: one refetch, then refused.
    with pytest.raises(TokenRefused, match="'new' is not one of"):
        await tokens.credential(sign(rotated, claims()))
    assert len(served.requests) == 2

    # Within the interval, made-up kids cost the provider nothing.
    served.keys = [old, rotated]
    for kid in ("new", "made-up-1", "made-up-2"):
        with pytest.raises(TokenRefused, match="is not one of"):
            await tokens.credential(sign(rsa_key(kid), claims()))
    assert len(served.requests) == 2

    # Once the interval has passed, the new key is fetched and accepted.
    clock.now += REFETCH_INTERVAL
    assert (await tokens.credential(sign(rotated, claims()))).actor == "alice"
    assert len(served.requests) == 3


async def test_concurrent_unknown_kids_share_one_fetch_and_the_loop_runs_meanwhile(
    checked: tuple[AccessTokens, Provider, Clock],
) -> None:
    tokens, served, _ = checked
    key = rsa_key("k1")
    served.keys = [key]
    served.answering.clear()  # the provider holds its answer until told
    loop, arrived = asyncio.get_running_loop(), asyncio.Event()
    served.on_request = lambda: loop.call_soon_threadsafe(arrived.set)
    stranger = sign(rsa_key("stranger"), claims())

    waiting = [
        asyncio.create_task(tokens.credential(stranger)),
        asyncio.create_task(tokens.credential(stranger)),
        asyncio.create_task(tokens.credential(sign(key, claims()))),
    ]
    # The event loop goes on while the fetch is under way: this coroutine runs on.
    await arrived.wait()
    assert not any(task.done() for task in waiting)
    served.answering.set()
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)

    assert [type(outcome) for outcome in outcomes[:2]] == [TokenRefused, TokenRefused]
    assert getattr(outcomes[2], "actor", None) == "alice"
    assert len(served.requests) == 1


async def test_keys_are_fetched_again_when_old_so_a_withdrawn_key_stops_working(
    checked: tuple[AccessTokens, Provider, Clock],
) -> None:
    tokens, served, clock = checked
    kept, withdrawn = rsa_key("kept"), rsa_key("withdrawn")
    served.keys = [kept, withdrawn]
    assert (await tokens.credential(sign(withdrawn, claims()))).actor == "alice"

    served.keys = [kept]
    clock.now += KEYS_MAX_AGE

    with pytest.raises(TokenRefused, match="'withdrawn' is not one of"):
        await tokens.credential(sign(withdrawn, claims()))
    assert (await tokens.credential(sign(kept, claims()))).actor == "alice"
    assert len(served.requests) == 2


async def test_a_provider_that_fails_leaves_the_keys_it_gave_before_in_use(
    checked: tuple[AccessTokens, Provider, Clock],
) -> None:
    tokens, served, clock = checked
    key = rsa_key("k1")
    served.keys = [key]
    await tokens.credential(sign(key, claims()))
    served.status = 500
    clock.now += KEYS_MAX_AGE

    assert (await tokens.credential(sign(key, claims()))).actor == "alice"
    assert len(served.requests) == 2


# -- over HTTP, through the app ----------------------------------------------------------------


async def test_a_token_checked_against_an_https_jwks_changes_what_it_may(
    provider: tuple[Provider, str],
    trusting: httpx.AsyncHTTPTransport,
    database_url: str,
    engine: AsyncEngine,
    uow: UnitOfWorkFactory,
) -> None:
    served, url = provider
    key = rsa_key("k1")
    served.keys = [key]
    await helpers.item(uow, "BOLT")
    await helpers.location(uow, "A-01")
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        pool_size=2,
        jwt_jwks=url,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
    )
    app = create_app(settings, jwks_transport=trusting)
    adjust = (
        'mutation { adjustInventory(input: {sku: "BOLT", lotNumber: "L1", locationCode: "A-01",'
        " quantity: 5}) { adjustment { actor } errors { code } } }"
    )
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://localhost"
        ) as http:
            stranger = sign(rsa_key("stranger"), claims())
            refused = await http.post(
                "/graphql",
                json={"query": adjust},
                headers={"authorization": f"Bearer {stranger}"},
            )
            accepted = await http.post(
                "/graphql",
                json={"query": adjust},
                headers={"authorization": f"Bearer {sign(key, claims(sub='carol'))}"},
            )
    finally:
        await app.state.authenticator.close()
        await app.state.database.close()

    assert refused.status_code == 401
    assert refused.json()["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}
    assert accepted.status_code == 200
    assert accepted.json()["data"]["adjustInventory"] == {
        "adjustment": {"actor": "carol"},
        "errors": [],
    }
    async with engine.connect() as connection:
        actors = (await connection.execute(text("SELECT actor FROM inventory_adjustments"))).all()
    assert actors == [("carol",)]
    # One fetch for the stranger (first use), none more for carol's known key.
    assert len(served.requests) == 1


async def test_an_unreachable_provider_is_503_unavailable_not_the_clients_fault(
    trusting: httpx.AsyncHTTPTransport, database_url: str, engine: AsyncEngine
) -> None:
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        pool_size=2,
        jwt_jwks="https://127.0.0.1:1/jwks.json",  # nothing listens on port 1
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
    )
    app = create_app(settings, jwks_transport=trusting)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://localhost"
        ) as http:
            token = sign(rsa_key("k1"), claims())
            response = await http.post(
                "/graphql",
                json={"query": "{ items { totalCount } }"},
                headers={"authorization": f"Bearer {token}"},
            )
    finally:
        await app.state.authenticator.close()
        await app.state.database.close()

    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"] == {"code": "UNAVAILABLE"}
    assert "retry-after" in response.headers
