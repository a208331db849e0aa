"""An OpenID Connect provider for tests: keys made with `cryptography`, published as a
JWKS, and tokens signed with them (by joserfc) or forged by hand (as an attacker would)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc import jws
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey

from schema.tokens import REGISTRY

ISSUER = "https://login.example.com/realms/warehouse"
AUDIENCE = "allocation-api"


@dataclass(frozen=True)
class SigningKey:
    """A provider's private key, the algorithm it signs with, and its public JWK."""

    kid: str
    alg: str
    key: Key

    def public(self) -> dict[str, Any]:
        return dict(self.key.as_dict(private=False))

    def public_pem(self) -> bytes:
        public = self.key.get_op_key("verify")
        return public.public_bytes(  # type: ignore[union-attr]
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def rsa_key(kid: str, alg: str = "RS256") -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(kid, alg, RSAKey.import_key(private, {"kid": kid}))


def ec_key(kid: str, alg: str = "ES256") -> SigningKey:
    curve = ec.SECP256R1() if alg == "ES256" else ec.SECP384R1()
    private = ec.generate_private_key(curve)
    return SigningKey(kid, alg, ECKey.import_key(private, {"kid": kid}))


def ed_key(kid: str) -> SigningKey:
    return SigningKey(
        kid, "EdDSA", OKPKey.import_key(ed25519.Ed25519PrivateKey.generate(), {"kid": kid})
    )


def jwks(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [key.public() for key in keys]}


def write_jwks(path: Path, *keys: SigningKey) -> Path:
    path.write_text(json.dumps(jwks(*keys)))
    return path


def claims(**changes: Any) -> dict[str, Any]:
    """An access token's claims for `alice`, valid for five minutes; `None` drops one."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": now,
        "exp": now + 300,
        "scope": "orders:read inventory:read inventory:write",
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def sign(key: SigningKey, payload: dict[str, Any], **header: Any) -> str:
    """A token signed by `key`; the header says its algorithm and kid unless told."""
    protected = {"typ": "at+jwt", "alg": key.alg, "kid": key.kid, **header}
    protected = {name: value for name, value in protected.items() if value is not None}
    # The server's registry: it alone knows EdDSA without warning on every use.
    return jws.serialize_compact(protected, json.dumps(payload), key.key, registry=REGISTRY)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A token put together by hand, as an attacker would, with any header."""
    return ".".join(
        (_b64(json.dumps(header).encode()), _b64(json.dumps(payload).encode()), _b64(signature))
    )


def hmac_with_public_key(key: SigningKey, payload: dict[str, Any]) -> str:
    """The classic confusion: HS256 'signed' with the provider's public key as the secret,
    which anyone can download."""
    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    mac = hmac.new(key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def tamper(token: str, **changes: Any) -> str:
    """The token with its claims changed and its signature kept."""
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    decoded.update(changes)
    return ".".join((header, _b64(json.dumps(decoded).encode()), signature))
