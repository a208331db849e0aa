"""Mutations run one after another in a request; each payload shows its own change."""

from __future__ import annotations

from resolvers.ids import to_global_id
from services.ports import UnitOfWorkFactory
from tests.conftest import GraphQLClient
from tests.service import helpers

BOTH = """mutation($id: ID!) {
  first: allocateOrder(id: $id) { salesOrder { status version lines { quantityPacked } } }
  second: packAllocatedOrder(id: $id) {
    salesOrder { status version lines { quantityPacked } } } }"""


async def test_a_second_mutation_in_the_request_does_not_see_rows_cached_by_the_first(
    gql: GraphQLClient,
    uow: UnitOfWorkFactory,
) -> None:
    await helpers.one_balance(uow, 10)
    order_id = await helpers.order(uow, ("WIDGET", 4))

    data = await gql.data(BOTH, id=to_global_id("SalesOrder", order_id))

    assert data["first"]["salesOrder"] == {
        "status": "ALLOCATED",
        "version": 2,
        "lines": [{"quantityPacked": 0}],
    }
    assert data["second"]["salesOrder"] == {
        "status": "PACKED",
        "version": 3,
        "lines": [{"quantityPacked": 4}],
    }
