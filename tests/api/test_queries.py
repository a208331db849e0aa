"""Root query fields looked up by a natural key."""

from __future__ import annotations

from services.ports import UnitOfWorkFactory
from tests.conftest import GraphQLClient
from tests.service import helpers

LOCATION = """query($code: String!) {
  location(code: $code) { id code name pickSequence } }"""
NODE = "query($id: ID!) { node(id: $id) { ... on Location { code } } }"


async def test_a_location_is_found_by_its_code_and_an_unknown_code_is_null(
    gql: GraphQLClient, uow: UnitOfWorkFactory
) -> None:
    await helpers.location(uow, "A-01", 2)
    await helpers.location(uow, "A-02", 1)

    found = (await gql.data(LOCATION, code="A-02"))["location"]
    unknown = await gql.post(LOCATION, code="A-99")

    assert {k: found[k] for k in ("code", "name", "pickSequence")} == {
        "code": "A-02",
        "name": "A-02",
        "pickSequence": 1,
    }
    # Its id is a global id that node() resolves to the same location.
    assert (await gql.data(NODE, id=found["id"]))["node"] == {"code": "A-02"}
    # Not there is null, not an error.
    assert unknown["data"] == {"location": None}
    assert "errors" not in unknown
