"""Settings, read once from the environment (or a .env file)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    load_demo_data: bool = True
    graphiql: bool = True
    introspection: bool = Field(True, description="GraphiQL exploration needs it.")
    pool_size: int = Field(10, ge=1, description="Database connections per worker process.")
    workers: int = Field(1, ge=1, description="uvicorn worker processes on the one port.")
    log_level: str = "info"
    metrics: bool = Field(
        False, description="Serve GET /metrics (internal retries, Prometheus text): for bench/."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description='Origins a browser may call from, e.g. ["http://localhost:5173"].',
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
    def _no_credentials_for_every_origin(self) -> Self:
        # The CORS spec forbids credentials with `Access-Control-Allow-Origin: *`, and
        # echoing every origin instead would let any web page act with a user's cookies.
        if self.cors_allow_credentials and "*" in self.cors_origins:
            raise ValueError(
                "CORS_ALLOW_CREDENTIALS=true cannot be used with the wildcard origin "
                '"*" in CORS_ORIGINS: list the origins that may send credentials.'
            )
        return self
