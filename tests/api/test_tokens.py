"""Access tokens checked as RFC 8725 advises (SPEC 7), one rule at a time, against a JWKS
file; tests/api/test_credentials.py shows the same refusals over HTTP, and
tests/api/test_jwks_fetch.py the fetching of keys from an https URL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from resolvers.access import Scope
from schema.tokens import LEEWAY, AccessTokens, ProviderKeys, TokenRefused
from tests.api.signing import (
    AUDIENCE,
    ISSUER,
    SigningKey,
    claims,
    ec_key,
    ed_key,
    forge,
    hmac_with_public_key,
    rsa_key,
    sign,
    tamper,
    write_jwks,
)

NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def rs256() -> SigningKey:
    return rsa_key("rsa-1")


@pytest.fixture(scope="module")
def es256() -> SigningKey:
    return ec_key("ec-1")


@pytest.fixture(scope="module")
def provider_keys(rs256: SigningKey, es256: SigningKey) -> list[SigningKey]:
    """Every algorithm of the allow-list, each with a key of its own."""
    return [
        rs256,
        rsa_key("rsa-384", "RS384"),
        rsa_key("rsa-512", "RS512"),
        rsa_key("pss-256", "PS256"),
        rsa_key("pss-384", "PS384"),
        rsa_key("pss-512", "PS512"),
        es256,
        ec_key("ec-384", "ES384"),
        ed_key("ed-1"),
    ]


@pytest.fixture
async def tokens(tmp_path: Path, provider_keys: list[SigningKey]) -> AsyncIterator[AccessTokens]:
    jwks = write_jwks(tmp_path / "jwks.json", *provider_keys)
    checker = AccessTokens(
        ProviderKeys(str(jwks)), issuer=ISSUER, audience=AUDIENCE, clock=lambda: NOW
    )
    yield checker
    await checker.close()


def at(**changes: Any) -> dict[str, Any]:
    """Claims valid at NOW."""
    return claims(**{"iat": int(NOW), "exp": int(NOW) + 300, **changes})


async def refused(tokens: AccessTokens, token: str) -> str:
    with pytest.raises(TokenRefused) as refusal:
        await tokens.credential(token)
    return str(refusal.value)


# -- what is accepted --------------------------------------------------------------------------


async def test_each_allowed_algorithm_with_its_key_gives_the_subjects_credential(
    tokens: AccessTokens, provider_keys: list[SigningKey]
) -> None:
    for key in provider_keys:
        credential = await tokens.credential(sign(key, at()))

        assert credential.actor == "alice", key.alg
        assert credential.scopes == {
            Scope.ORDERS_READ,
            Scope.INVENTORY_READ,
            Scope.INVENTORY_WRITE,
        }
    assert {key.alg for key in provider_keys} == {
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"
    }  # fmt: skip


async def test_scopes_come_from_scp_as_a_list_and_unknown_ones_are_left_out(
    tokens: AccessTokens, rs256: SigningKey
) -> None:
    token = sign(rs256, at(scope=None, scp=["packing:write", "openid", "profile"]))

    credential = await tokens.credential(token)

    assert credential.scopes == {Scope.PACKING_WRITE}


async def test_scope_and_scp_together_give_both(tokens: AccessTokens, rs256: SigningKey) -> None:
    token = sign(rs256, at(scope="orders:read", scp=["admin"]))

    assert (await tokens.credential(token)).scopes == {Scope.ORDERS_READ, Scope.ADMIN}


async def test_a_token_without_scopes_is_a_credential_with_none(
    tokens: AccessTokens, rs256: SigningKey
) -> None:
    credential = await tokens.credential(sign(rs256, at(scope=None)))

    assert credential.actor == "alice"
    assert credential.scopes == frozenset()


async def test_the_owner_tells_issuer_and_subject_apart(
    tokens: AccessTokens, rs256: SigningKey
) -> None:
    alice = await tokens.credential(sign(rs256, at()))
    bob = await tokens.credential(sign(rs256, at(sub="bob")))

    assert alice.owner != bob.owner
    assert ISSUER in alice.owner
    assert "alice" in alice.owner


async def test_an_audience_list_naming_this_api_is_accepted(
    tokens: AccessTokens, rs256: SigningKey
) -> None:
    token = sign(rs256, at(aud=["another-api", AUDIENCE]))

    assert (await tokens.credential(token)).actor == "alice"


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", "application/at+jwt", None])
async def test_typ_may_be_jwt_or_at_jwt_or_absent(
    tokens: AccessTokens, rs256: SigningKey, typ: str | None
) -> None:
    assert (await tokens.credential(sign(rs256, at(), typ=typ))).actor == "alice"


@pytest.mark.parametrize(
    "header",
    [
        {"jku": "https://attacker.example/jwks.json"},
        {"x5u": "https://attacker.example/cert.pem"},
        {"x5c": ["MIIBkTCB+wIJA" + "A" * 3000]},  # a long chain, as some providers send
    ],
)
async def test_key_bearing_headers_are_ignored_when_the_named_key_signed(
    tokens: AccessTokens, rs256: SigningKey, header: dict[str, Any]
) -> None:
    assert (await tokens.credential(sign(rs256, at(), **header))).actor == "alice"


# -- time, with LEEWAY seconds of skew ---------------------------------------------------------


async def test_expired_beyond_the_leeway_is_refused(
    tokens: AccessTokens, rs256: SigningKey
) -> None:
    token = sign(rs256, at(exp=int(NOW) - LEEWAY - 1))

    assert "expired" in await refused(tokens, token)


async def test_expired_within_the_leeway_is_accepted(
    tokens: AccessTokens, rs256: SigningKey
) -> None:
    token = sign(rs256, at(exp=int(NOW) - LEEWAY + 1))

    assert (await tokens.credential(token)).actor == "alice"


async def test_not_yet_valid_beyond_the_leeway_is_refused(
    tokens: AccessTokens, rs256: SigningKey
) -> None:
    token = sign(rs256, at(nbf=int(NOW) + LEEWAY + 1))

    assert "not valid yet" in await refused(tokens, token)


async def test_not_yet_valid_within_the_leeway_is_accepted(
    tokens: AccessTokens, rs256: SigningKey
) -> None:
    token = sign(rs256, at(nbf=int(NOW) + LEEWAY - 1))

    assert (await tokens.credential(token)).actor == "alice"


def test_the_leeway_is_at_most_thirty_seconds() -> None:
    assert 0 < LEEWAY <= 30


# -- claims ------------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["exp", "iss", "aud", "sub"])
async def test_a_required_claim_missing_is_refused(
    tokens: AccessTokens, rs256: SigningKey, claim: str
) -> None:
    message = await refused(tokens, sign(rs256, at(**{claim: None})))

    assert "lacks" in message
    assert claim in message


async def test_the_wrong_issuer_is_refused(tokens: AccessTokens, rs256: SigningKey) -> None:
    message = await refused(tokens, sign(rs256, at(iss="https://login.example.com/other")))

    assert "issuer" in message


async def test_the_wrong_audience_is_refused(tokens: AccessTokens, rs256: SigningKey) -> None:
    message = await refused(tokens, sign(rs256, at(aud=["another-api"])))

    assert "not meant for this API" in message


async def test_an_id_token_with_a_nonce_is_refused(tokens: AccessTokens, rs256: SigningKey) -> None:
    message = await refused(tokens, sign(rs256, at(nonce="n-0S6_WzA2Mj")))

    assert "ID token" in message


@pytest.mark.parametrize("typ", ["JOSE", "id+jwt", "dpop+jwt"])
async def test_another_typ_is_refused(tokens: AccessTokens, rs256: SigningKey, typ: str) -> None:
    assert "typ" in await refused(tokens, sign(rs256, at(), typ=typ))


@pytest.mark.parametrize("subject", ["system", "anonymous", "x" * 256, "tab\there", ""])
async def test_a_reserved_or_unfit_subject_is_refused(
    tokens: AccessTokens, rs256: SigningKey, subject: str
) -> None:
    await refused(tokens, sign(rs256, at(sub=subject)))


@pytest.mark.parametrize("scope", [{"scope": 7}, {"scp": [1, 2]}])
async def test_scopes_of_the_wrong_type_are_refused(
    tokens: AccessTokens, rs256: SigningKey, scope: dict[str, Any]
) -> None:
    assert "neither text nor a list" in await refused(tokens, sign(rs256, at(**scope)))


# -- algorithms and keys -----------------------------------------------------------------------


async def test_alg_none_is_refused(tokens: AccessTokens) -> None:
    token = forge({"alg": "none", "typ": "JWT", "kid": "rsa-1"}, at())

    assert "'none' is not accepted" in await refused(tokens, token)


async def test_hs256_signed_with_the_public_key_is_refused(
    tokens: AccessTokens, rs256: SigningKey
) -> None:
    token = hmac_with_public_key(rs256, at())

    assert "'HS256' is not accepted" in await refused(tokens, token)


async def test_an_algorithm_that_does_not_fit_the_named_keys_type_is_refused(
    tokens: AccessTokens, rs256: SigningKey, es256: SigningKey
) -> None:
    # Signed by the EC key, claiming ES256, but naming the RSA key.
    mismatched = sign(es256, at(), kid=rs256.kid)
    # ES384 (which needs P-384) naming the P-256 key; joserfc would not sign it, so by hand.
    other_curve = forge({"alg": "ES384", "kid": es256.kid}, at(), signature=b"\1" * 96)

    assert "cannot check ES256" in await refused(tokens, mismatched)
    assert "cannot check ES384" in await refused(tokens, other_curve)


async def test_an_unknown_kid_is_refused_and_never_matched_to_another_key(
    tokens: AccessTokens,
) -> None:
    stranger = rsa_key("rsa-2")  # not published

    message = await refused(tokens, sign(stranger, at()))

    assert "'rsa-2' is not one of the provider's" in message


async def test_a_token_naming_no_key_is_refused(tokens: AccessTokens, rs256: SigningKey) -> None:
    assert "names no key" in await refused(tokens, sign(rs256, at(), kid=None))


async def test_a_key_in_the_jwk_header_is_not_used(tokens: AccessTokens, rs256: SigningKey) -> None:
    attacker = rsa_key(rs256.kid)  # same kid, the attacker's own key, sent along
    token = sign(attacker, at(), jwk=attacker.public())

    assert "signature does not verify" in await refused(tokens, token)


async def test_a_token_signed_by_another_key_under_a_known_kid_is_refused(
    tokens: AccessTokens, rs256: SigningKey
) -> None:
    impostor = rsa_key(rs256.kid)

    assert "signature does not verify" in await refused(tokens, sign(impostor, at()))


async def test_a_tampered_token_is_refused(tokens: AccessTokens, rs256: SigningKey) -> None:
    token = tamper(sign(rs256, at()), sub="mallory", scope="admin")

    assert "signature does not verify" in await refused(tokens, token)


@pytest.mark.parametrize(
    ("token", "says"),
    [
        ("a.b.c.d.e", "Encrypted (JWE)"),
        ("not-a-token", "neither an API key nor a JWT"),
        ("e30.e30.", "cannot be read"),  # {} as header: no alg
        ("!!!.e30.e30", "cannot be read"),
    ],
)
async def test_what_is_not_a_signed_jwt_is_refused(
    tokens: AccessTokens, token: str, says: str
) -> None:
    assert says in await refused(tokens, token)


async def test_a_crit_header_is_refused(tokens: AccessTokens, rs256: SigningKey) -> None:
    token = forge({"alg": "RS256", "kid": rs256.kid, "crit": ["exp"], "exp": int(NOW)}, at())

    assert "crit" in await refused(tokens, token)


async def test_a_key_meant_for_encryption_is_not_used_to_verify(tmp_path: Path) -> None:
    key = rsa_key("enc-1")
    published = {**key.public(), "use": "enc"}
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [published]}))
    checker = AccessTokens(ProviderKeys(str(jwks)), issuer=ISSUER, audience=AUDIENCE)

    with pytest.raises(TokenRefused, match="cannot check RS256"):
        await checker.credential(sign(key, claims()))
