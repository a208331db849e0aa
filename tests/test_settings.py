"""The settings of SPEC 7: AUTH's default follows DATABASE_URL, and the JWT_* settings are
refused unless whole and pointing at keys that cannot be swapped on the way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from schema.settings import Settings

URL = "postgresql://allocation@db.example.com/allocation"


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def test_auth_is_open_with_the_embedded_database_and_required_with_a_database_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("AUTH", raising=False)

    assert settings().auth == "open"
    assert settings(database_url=URL).auth == "required"
    monkeypatch.setenv("DATABASE_URL", URL)
    assert settings().auth == "required"
    monkeypatch.setenv("AUTH", "open")
    assert settings().auth == "open"  # may be set explicitly with DATABASE_URL


def test_the_embedded_databases_mode_stays_when_its_url_is_filled_in() -> None:
    # serve.py fills in the embedded server's URL after reading the settings.
    assert settings().model_copy(update={"database_url": URL}).auth == "open"


def test_auth_takes_only_open_or_required() -> None:
    with pytest.raises(ValidationError, match="auth"):
        settings(auth="optional")


@pytest.mark.parametrize(
    "given",
    [{"jwt_jwks": "https://login.example.com/jwks"}, {"jwt_issuer": "x", "jwt_audience": "y"}],
)
def test_jwt_settings_come_together_or_not_at_all(given: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="must be set too"):
        settings(**given)


def test_jwks_over_plain_http_is_refused() -> None:
    with pytest.raises(ValidationError, match="https URL or a file path"):
        settings(jwt_jwks="http://login.example.com/jwks", jwt_issuer="x", jwt_audience="y")


def test_a_jwks_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="names no file"):
        settings(jwt_jwks=str(tmp_path / "missing.json"), jwt_issuer="x", jwt_audience="y")
    (tmp_path / "jwks.json").write_text('{"keys": []}')
    assert settings(jwt_jwks=str(tmp_path / "jwks.json"), jwt_issuer="x", jwt_audience="y")


@pytest.mark.parametrize("name", ["../dev", "a/b", ""])
def test_the_embedded_data_folder_is_a_plain_name(name: str) -> None:
    with pytest.raises(ValidationError, match="embedded_data"):
        settings(embedded_data=name)
