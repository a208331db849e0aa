"""The committed SDL is the live schema: clients and reviewers diff schema/schema.graphql."""

from pathlib import Path

from schema.export import sdl

COMMITTED = Path(__file__).resolve().parent.parent / "schema" / "schema.graphql"


def test_the_committed_sdl_matches_the_live_schema() -> None:
    assert COMMITTED.read_text() == sdl(), "run `make schema` and commit schema/schema.graphql"
