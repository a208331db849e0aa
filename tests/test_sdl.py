"""The committed SDL is the live schema: clients and reviewers diff schema/schema.graphql."""

from pathlib import Path

from schema.enums import ErrorCode
from schema.export import sdl
from services.domain.errors import ErrorCode as DomainCode

COMMITTED = Path(__file__).resolve().parent.parent / "schema" / "schema.graphql"


def test_the_committed_sdl_matches_the_live_schema() -> None:
    assert COMMITTED.read_text() == sdl(), "run `make schema` and commit schema/schema.graphql"


def test_every_domain_error_code_is_a_graphql_error_code() -> None:
    assert {code.value for code in DomainCode} <= {code.value for code in ErrorCode}
