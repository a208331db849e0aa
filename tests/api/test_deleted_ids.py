"""deleteSalesOrderLine and deleteBackorder give the deleted object's global id, so a
client cache can evict it (Relay's @deleteRecord, Apollo's cache.evict); other calls
with the same payload type give null."""

from __future__ import annotations

from resolvers.ids import to_global_id
from services import orders
from services.ports import UnitOfWorkFactory
from tests.conftest import GraphQLClient
from tests.service import helpers

LINE = """mutation($id: ID!) { deleteSalesOrderLine(id: $id) {
  deletedId salesOrder { id lines { id } } errors { code } } }"""
BACKORDER = """mutation($id: ID!, $delete: Boolean!) {
  cancel: cancelBackorder(id: $id) @skip(if: $delete) { deletedId backorder { id } errors { code } }
  delete: deleteBackorder(id: $id) @include(if: $delete) {
    deletedId backorder { id } salesOrder { id backorders { id } } errors { code } } }"""


async def test_deleting_a_line_gives_its_id(gql: GraphQLClient, uow: UnitOfWorkFactory) -> None:
    await helpers.one_balance(uow, 5)
    order_id = await helpers.order(uow, ("WIDGET", 1), ("WIDGET", 2))
    async with uow() as u:
        order = await u.orders.get(order_id)
    assert order is not None
    kept, gone = [to_global_id("SalesOrderLine", line.id or 0) for line in order.lines]

    payload = (await gql.data(LINE, id=gone))["deleteSalesOrderLine"]

    assert payload["errors"] == []
    assert payload["deletedId"] == gone
    assert payload["salesOrder"]["lines"] == [{"id": kept}]


async def test_deleting_a_backorder_gives_its_id_and_cancelling_one_does_not(
    gql: GraphQLClient, uow: UnitOfWorkFactory
) -> None:
    await helpers.one_balance(uow, 0)
    ids = []
    for _ in range(2):
        order_id = await helpers.order(uow, ("WIDGET", 3))
        await orders.allocate_order(uow, order_id)
        async with uow() as u:
            order = await u.orders.get(order_id)
        assert order is not None
        ids.append(to_global_id("Backorder", order.backorders[0].id or 0))
    cancelled, deleted = ids

    cancel = (await gql.data(BACKORDER, id=cancelled, delete=False))["cancel"]
    delete = (await gql.data(BACKORDER, id=deleted, delete=True))["delete"]

    assert cancel == {"deletedId": None, "backorder": {"id": cancelled}, "errors": []}
    assert delete["deletedId"] == deleted
    assert delete["backorder"] is None
    assert delete["salesOrder"]["backorders"] == []
    assert delete["errors"] == []
