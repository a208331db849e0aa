"""Credentials at the HTTP edge (SPEC 7): API keys and access tokens through the real ASGI
app on real PostgreSQL. A refused credential is 401 UNAUTHENTICATED with
`WWW-Authenticate: Bearer` and changes nothing; an accepted one is the actor on record."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.api_keys import create_key, revoke_key
from db.database import Database
from schema.http import GRAPHQL_RESPONSE_JSON
from services.ports import UnitOfWorkFactory
from tests.api.signing import (
    AUDIENCE,
    ISSUER,
    SigningKey,
    claims,
    forge,
    hmac_with_public_key,
    rsa_key,
    sign,
    tamper,
    write_jwks,
)
from tests.conftest import AppClient
from tests.service import helpers

ADJUST = """mutation Receive($quantity: Int!) {
  adjustInventory(input: {sku: "BOLT", lotNumber: "L1", locationCode: "A-01", quantity: $quantity})
  { adjustment { actor quantity } errors { code message } } }"""
ITEMS = "{ items { totalCount } }"


@pytest.fixture(scope="module")
def provider_key() -> SigningKey:
    return rsa_key("provider-1")


@pytest.fixture
def jwks_file(tmp_path: Path, provider_key: SigningKey) -> Path:
    return write_jwks(tmp_path / "jwks.json", provider_key)


@pytest.fixture
async def required(
    app_client: AppClient, jwks_file: Path, uow: UnitOfWorkFactory
) -> AsyncIterator[httpx.AsyncClient]:
    """A server in required mode taking tokens of the test provider, with an item BOLT and
    a location A-01 to receive stock into."""
    await helpers.item(uow, "BOLT")
    await helpers.location(uow, "A-01")
    settings = {"jwt_jwks": str(jwks_file), "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}
    async with app_client(auth="required", **settings) as http:
        yield http


@dataclass
class Keys:
    """API keys made straight in the database, as `make api-key` makes them."""

    database: Database

    async def make(self, name: str, *scopes: str) -> str:
        async with self.database.session() as session:
            _, secret = await create_key(session, name, list(scopes or ("admin",)))
        return secret

    async def revoke(self, name: str) -> None:
        async with self.database.session() as session:
            assert await revoke_key(session, name) is not None


@pytest.fixture
def keys(database: Database, engine: AsyncEngine) -> Keys:
    return Keys(database)


def bearer(credential: str) -> dict[str, str]:
    return {"authorization": f"Bearer {credential}"}


async def receive(
    http: httpx.AsyncClient, headers: dict[str, str], quantity: int = 5
) -> httpx.Response:
    body = {"query": ADJUST, "variables": {"quantity": quantity}}
    return await http.post("/graphql", json=body, headers=headers)


async def stock_changes(engine: AsyncEngine) -> tuple[int, int]:
    async with engine.connect() as connection:
        adjustments = await connection.scalar(text("SELECT count(*) FROM inventory_adjustments"))
        balances = await connection.scalar(text("SELECT count(*) FROM inventory_balances"))
    return int(adjustments or 0), int(balances or 0)


def assert_unauthenticated(response: httpx.Response) -> str:
    """401 with the challenge and SPEC 7's body; returns the message."""
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert list(body) == ["errors"]
    [error] = body["errors"]
    assert set(error) == {"message", "extensions"}
    assert error["extensions"] == {"code": "UNAUTHENTICATED"}
    message: str = error["message"]
    assert message
    return message


# -- no credential -----------------------------------------------------------------------------


async def test_a_mutation_without_a_credential_is_401_and_changes_nothing(
    required: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    response = await receive(required, {})

    assert "needs a credential" in assert_unauthenticated(response)
    assert response.headers["content-type"].startswith("application/json")
    assert await stock_changes(engine) == (0, 0)


async def test_the_401_comes_in_the_negotiated_media_type(required: httpx.AsyncClient) -> None:
    response = await required.post(
        "/graphql", json={"query": ITEMS}, headers={"accept": GRAPHQL_RESPONSE_JSON}
    )

    assert_unauthenticated(response)
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE_JSON)


async def test_a_query_over_get_needs_a_credential_too(required: httpx.AsyncClient) -> None:
    response = await required.get(
        "/graphql", params={"query": ITEMS}, headers={"accept": "application/json"}
    )

    assert_unauthenticated(response)


async def test_a_wrong_method_is_405_before_any_credential_is_asked_for(
    required: httpx.AsyncClient,
) -> None:
    response = await required.put("/graphql", json={"query": ITEMS})

    assert response.status_code == 405


async def test_probes_graphiql_and_its_assets_need_no_credential(
    required: httpx.AsyncClient,
) -> None:
    page = await required.get("/graphql", headers={"accept": "text/html"})
    asset = await required.get("/graphiql-assets/graphiql-start.js")

    assert (await required.get("/healthz")).status_code == 200
    assert (await required.get("/readyz")).status_code == 200
    assert page.status_code == 200
    assert "<title>" in page.text
    assert asset.status_code == 200


async def test_a_cors_preflight_needs_no_credential(app_client: AppClient) -> None:
    async with app_client(auth="required", cors_origins=["http://localhost:5173"]) as http:
        preflight = await http.options(
            "/graphql",
            headers={
                "origin": "http://localhost:5173",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
            },
        )

    assert preflight.status_code == 200
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()


def test_graphiqls_headers_tab_is_on_so_a_key_can_be_sent_from_it() -> None:
    start = Path(__file__).resolve().parents[2] / "schema/static/graphiql/graphiql-start.js"
    script = start.read_text()

    assert "isHeadersEditorEnabled: true" in script
    assert "headers: headers" in script  # what the tab holds goes with each request


# -- refused credentials -----------------------------------------------------------------------

Credential = Callable[["Keys", SigningKey], Awaitable[dict[str, str]]]


async def _expired(_: Keys, key: SigningKey) -> dict[str, str]:
    return bearer(sign(key, claims(exp=int(claims()["iat"]) - 3600)))


async def _not_yet_valid(_: Keys, key: SigningKey) -> dict[str, str]:
    return bearer(sign(key, claims(nbf=int(claims()["iat"]) + 3600)))


async def _wrong_issuer(_: Keys, key: SigningKey) -> dict[str, str]:
    return bearer(sign(key, claims(iss="https://attacker.example")))


async def _wrong_audience(_: Keys, key: SigningKey) -> dict[str, str]:
    return bearer(sign(key, claims(aud="some-other-api")))


async def _alg_none(_: Keys, key: SigningKey) -> dict[str, str]:
    return bearer(forge({"alg": "none", "typ": "JWT", "kid": key.kid}, claims(scope="admin")))


async def _hs256_with_the_public_key(_: Keys, key: SigningKey) -> dict[str, str]:
    return bearer(hmac_with_public_key(key, claims(scope="admin")))


async def _unknown_kid(_: Keys, key: SigningKey) -> dict[str, str]:
    return bearer(sign(rsa_key("not-published"), claims()))


async def _tampered_token(_: Keys, key: SigningKey) -> dict[str, str]:
    return bearer(tamper(sign(key, claims(scope="orders:read")), scope="admin"))


async def _id_token(_: Keys, key: SigningKey) -> dict[str, str]:
    return bearer(sign(key, claims(nonce="abc"), typ="JWT"))


async def _revoked_key(keys: Keys, _: SigningKey) -> dict[str, str]:
    secret = await keys.make("gone")
    await keys.revoke("gone")
    return bearer(secret)


async def _tampered_key(keys: Keys, _: SigningKey) -> dict[str, str]:
    secret = await keys.make("acme")
    last = secret[-1]
    return bearer(secret[:-1] + ("A" if last != "A" else "B"))


async def _unknown_key(keys: Keys, _: SigningKey) -> dict[str, str]:
    await keys.make("acme")
    return bearer("alloc_0123456789ab_" + "x" * 43)


async def _another_scheme(keys: Keys, _: SigningKey) -> dict[str, str]:
    return {"authorization": f"Basic {await keys.make('acme')}"}


async def _empty_bearer(_: Keys, __: SigningKey) -> dict[str, str]:
    return {"authorization": "Bearer "}


REFUSED: dict[str, tuple[Credential, str]] = {
    "expired token": (_expired, "expired"),
    "token not yet valid": (_not_yet_valid, "not valid yet"),
    "wrong issuer": (_wrong_issuer, "issuer"),
    "wrong audience": (_wrong_audience, "not meant for this API"),
    "alg none": (_alg_none, "'none' is not accepted"),
    "HS256 signed with the public key": (_hs256_with_the_public_key, "'HS256' is not accepted"),
    "unknown kid": (_unknown_kid, "not one of the provider's"),
    "tampered token": (_tampered_token, "signature does not verify"),
    "ID token": (_id_token, "ID token"),
    "revoked key": (_revoked_key, "revoked"),
    "tampered key": (_tampered_key, "not known"),
    "unknown key": (_unknown_key, "not known"),
    "another scheme": (_another_scheme, "Bearer"),
    "empty bearer": (_empty_bearer, "empty"),
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_a_refused_credential_is_401_and_the_mutation_changes_nothing(
    required: httpx.AsyncClient,
    keys: Keys,
    provider_key: SigningKey,
    engine: AsyncEngine,
    case: str,
) -> None:
    make, says = REFUSED[case]
    headers = await make(keys, provider_key)

    response = await receive(required, headers)

    assert says in assert_unauthenticated(response)
    assert await stock_changes(engine) == (0, 0)


async def test_two_authorization_headers_are_refused(required: httpx.AsyncClient) -> None:
    response = await required.post(
        "/graphql",
        json={"query": ITEMS},
        headers=[("authorization", "Bearer a"), ("authorization", "Bearer b")],
    )

    assert "one Authorization header" in assert_unauthenticated(response)


async def test_a_token_where_no_provider_is_set_up_is_refused(
    app_client: AppClient, provider_key: SigningKey
) -> None:
    async with app_client(auth="required") as http:
        response = await http.post(
            "/graphql", json={"query": ITEMS}, headers=bearer(sign(provider_key, claims()))
        )

    assert "API keys only" in assert_unauthenticated(response)


async def test_a_refusal_is_logged_at_info_by_the_keys_prefix_never_its_secret(
    required: httpx.AsyncClient, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    secret = await keys.make("gone")
    await keys.revoke("gone")

    with caplog.at_level(logging.INFO):
        assert_unauthenticated(await receive(required, bearer(secret)))

    ours = [r for r in caplog.records if r.name == "schema.credentials"]
    assert [(r.levelno, r.exc_info) for r in ours] == [(logging.INFO, None)]
    assert secret[:18] in ours[0].getMessage()  # the prefix names it
    assert all(secret not in r.getMessage() and secret[19:] not in r.getMessage()
               for r in caplog.records)  # fmt: skip
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# -- accepted credentials ----------------------------------------------------------------------


async def actors(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(text("SELECT actor FROM inventory_adjustments ORDER BY id"))
    return [row.actor for row in rows]


async def test_an_api_key_acts_as_its_name_on_record(
    required: httpx.AsyncClient, keys: Keys, engine: AsyncEngine
) -> None:
    secret = await keys.make("acme-erp", "inventory:write")

    response = await receive(required, bearer(secret))

    assert response.status_code == 200
    assert response.json()["data"]["adjustInventory"] == {
        "adjustment": {"actor": "acme-erp", "quantity": 5},
        "errors": [],
    }
    assert await actors(engine) == ["acme-erp"]


async def test_an_access_token_acts_as_its_subject_on_record(
    required: httpx.AsyncClient, provider_key: SigningKey, engine: AsyncEngine
) -> None:
    token = sign(provider_key, claims(sub="auth0|5f7c8ec7c33c6c004bbafe82"))

    response = await receive(required, bearer(token))

    assert response.status_code == 200
    adjustment = response.json()["data"]["adjustInventory"]["adjustment"]
    assert adjustment == {"actor": "auth0|5f7c8ec7c33c6c004bbafe82", "quantity": 5}
    assert await actors(engine) == ["auth0|5f7c8ec7c33c6c004bbafe82"]


async def test_a_key_revoked_between_two_requests_is_refused_on_the_second(
    required: httpx.AsyncClient, keys: Keys, engine: AsyncEngine
) -> None:
    secret = await keys.make("acme-erp")
    assert (await receive(required, bearer(secret))).status_code == 200

    await keys.revoke("acme-erp")
    refused = await receive(required, bearer(secret), quantity=7)

    assert "revoked" in assert_unauthenticated(refused)
    assert await actors(engine) == ["acme-erp"]  # the first change only


async def test_a_keys_last_use_is_written_once_for_a_burst_of_requests(
    required: httpx.AsyncClient, keys: Keys, engine: AsyncEngine
) -> None:
    secret = await keys.make("busy")

    async def last_used() -> object:
        async with engine.connect() as connection:
            return await connection.scalar(
                text("SELECT last_used_at FROM api_keys WHERE name = 'busy'")
            )

    assert await last_used() is None
    first = await required.post("/graphql", json={"query": ITEMS}, headers=bearer(secret))
    written = await last_used()
    second = await required.post("/graphql", json={"query": ITEMS}, headers=bearer(secret))

    assert (first.status_code, second.status_code) == (200, 200)
    assert written is not None
    assert await last_used() == written  # the second request did not write


# -- open mode ---------------------------------------------------------------------------------


async def test_open_mode_acts_as_anonymous_without_a_credential(
    client: httpx.AsyncClient, uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.item(uow, "BOLT")
    await helpers.location(uow, "A-01")

    response = await receive(client, {})

    assert response.json()["data"]["adjustInventory"]["adjustment"]["actor"] == "anonymous"
    assert await actors(engine) == ["anonymous"]


async def test_open_mode_checks_a_credential_that_is_sent(
    client: httpx.AsyncClient, keys: Keys, uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.item(uow, "BOLT")
    await helpers.location(uow, "A-01")
    secret = await keys.make("acme-erp")

    accepted = await receive(client, bearer(secret))
    refused = await receive(client, bearer(secret[:-2] + "zz"))

    assert accepted.json()["data"]["adjustInventory"]["adjustment"]["actor"] == "acme-erp"
    assert_unauthenticated(refused)
    assert await actors(engine) == ["acme-erp"]
