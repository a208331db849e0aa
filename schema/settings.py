"""Settings, read once from the environment (or a .env file)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    database_url: str | None = Field(
        None, description="Unset: an embedded PostgreSQL under .pgdata/ is started."
    )
    load_demo_data: bool = True
    graphiql: bool = True
    pool_size: int = Field(10, ge=1)
    log_level: str = "info"
