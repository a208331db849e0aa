"""Settings, read once from the environment (or a .env file)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

AuthMode = Literal["open", "required"]


def _auth_default(data: dict[str, Any]) -> AuthMode:
    # The laptop's `make run` (embedded database) is open so that GraphiQL works with no
    # credential; a server given a real database needs credentials unless told otherwise.
    return "required" if data.get("database_url") else "open"


# SPEC 7: what a browser's GraphQL client sends (Apollo's client names included).
CORS_ALLOW_HEADERS = (
    "content-type",
    "accept",
    "authorization",
    "idempotency-key",
    "x-request-id",
    "apollographql-client-name",
    "apollographql-client-version",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    database_url: str | None = Field(
        None, description="Unset: an embedded PostgreSQL under .pgdata/ is started."
    )
    embedded_data: str = Field(
        "dev",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
        description="The embedded PostgreSQL's folder under .pgdata/ when DATABASE_URL is unset.",
    )
    # Declared after database_url: its default depends on it (SPEC 7, "Modes").
    auth: AuthMode = Field(
        default_factory=_auth_default,
        description="open: no credential acts as 'anonymous' with every scope (loopback only); "
        "required: every GraphQL operation needs an API key or an access token.",
    )
    jwt_jwks: str | None = Field(
        None, description="The OpenID Connect provider's keys: an https URL or a file path."
    )
    jwt_issuer: str | None = Field(None, description="The `iss` access tokens must carry.")
    jwt_audience: str | None = Field(None, description="The `aud` access tokens must name.")
    load_demo_data: bool = True
    graphiql: bool = True
    introspection: bool = Field(True, description="GraphiQL exploration needs it.")
    pool_size: int = Field(10, ge=1, description="Database connections per worker process.")
    workers: int = Field(1, ge=1, description="uvicorn worker processes on the one port.")
    log_level: str = "info"
    auto_fill_backorders: bool = Field(
        False,
        description="A positive adjustInventory runs fillBackorders for its item right after "
        "its commit (SPEC 9); off, the user allocates orders again.",
    )
    metrics: bool = Field(
        False, description="Serve GET /metrics (internal retries, Prometheus text): for bench/."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description='Origins a browser may call from, e.g. ["http://localhost:5173"].',
    )
    idempotency_ttl: float = Field(
        86_400, gt=0, description="Seconds an idempotency key's outcome is kept (at least)."
    )
    cors_allow_headers: list[str] = Field(
        default_factory=lambda: list(CORS_ALLOW_HEADERS),
        description="Request headers a browser on an allowed origin may send.",
    )
    cors_allow_credentials: bool = Field(
        False, description="Let browsers send cookies; refused with a wildcard origin."
    )
    max_body_bytes: int = Field(
        1024 * 1024, ge=1, description="Largest request body; a larger one gets 413."
    )
    # Query limits: a request over any of them is refused before it runs.
    max_depth: int = Field(12, ge=1, description="Nesting depth of a document.")
    max_aliases: int = Field(30, ge=1, description="Aliases in a document.")
    max_tokens: int = Field(5000, ge=1, description="Lexical tokens in a document.")
    max_cost: int = Field(
        20_000, ge=1, description="Estimated objects returned: see docs/limits.md."
    )

    @model_validator(mode="after")
    def _tokens_are_configured_whole(self) -> Self:
        """JWT_JWKS, JWT_ISSUER and JWT_AUDIENCE come together: a token checked against
        only some of them would be accepted from anyone that provider signs for."""
        given = {
            "JWT_JWKS": self.jwt_jwks,
            "JWT_ISSUER": self.jwt_issuer,
            "JWT_AUDIENCE": self.jwt_audience,
        }
        missing = [name for name, value in given.items() if not value]
        if len(missing) not in (0, len(given)):
            raise ValueError(
                f"{', '.join(missing)} must be set too: access tokens are checked against "
                "JWT_JWKS, JWT_ISSUER and JWT_AUDIENCE together"
            )
        if self.jwt_jwks and not self.jwt_jwks.startswith("https://"):
            if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", self.jwt_jwks):
                raise ValueError(
                    f"JWT_JWKS must be an https URL or a file path, not {self.jwt_jwks!r}: "
                    "keys fetched over plain HTTP could be swapped on the way"
                )
            if not Path(self.jwt_jwks).is_file():
                raise ValueError(f"JWT_JWKS names no file: {self.jwt_jwks!r}")
        return self

    @model_validator(mode="after")
    def _no_credentials_for_every_origin(self) -> Self:
        # The CORS spec forbids credentials with `Access-Control-Allow-Origin: *`, and
        # echoing every origin instead would let any web page act with a user's cookies.
        if self.cors_allow_credentials and "*" in self.cors_origins:
            raise ValueError(
                "CORS_ALLOW_CREDENTIALS=true cannot be used with the wildcard origin "
                '"*" in CORS_ORIGINS: list the origins that may send credentials.'
            )
        return self
