"""A lost database connection is UNAVAILABLE (retryable) for clients, never a masked
500, and the pool recovers by itself."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db import reads
from db.database import Database
from db.errors import Unavailable, connection_lost
from db.repositories import SqlUnitOfWork
from resolvers.ids import to_global_id
from services import orders
from services.ports import UnitOfWorkFactory
from tests.conftest import AppClient, GraphQLClient
from tests.service import helpers


async def terminate_other_backends(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        killed = await conn.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    return int(killed or 0)


async def test_a_unit_of_work_whose_backend_is_killed_reports_unavailable(
    uow: UnitOfWorkFactory,
    engine: AsyncEngine,
    database_url: str,
) -> None:
    await helpers.one_balance(uow, 5)
    order_id = await helpers.order(uow, ("WIDGET", 2))
    victim = Database(database_url, size=1)

    async def read_twice_with_the_backend_killed_between() -> None:
        async with SqlUnitOfWork(victim) as u:
            await u.orders.get(order_id)
            assert await terminate_other_backends(engine) >= 1
            await u.orders.get(order_id)

    try:
        with pytest.raises(Unavailable) as caught:
            await read_twice_with_the_backend_killed_between()
        assert connection_lost(caught.value.__cause__ or caught.value)

        # The pool replaces the dead connection: the next unit of work just works.
        result = await orders.allocate_order(lambda: SqlUnitOfWork(victim), order_id)
        assert [a.quantity for a in result.allocations] == [2]
    finally:
        await victim.close()


async def test_an_unreachable_database_is_unavailable_for_mutations_and_queries(
    app_client: AppClient,
) -> None:
    async with app_client(database_url="postgresql://nobody@127.0.0.1:1/none") as http:
        gql = GraphQLClient(http)
        mutation = await gql.data(
            'mutation { createItem(input: {sku: "X", name: "X"}) { errors { code } } }'
        )
        query = await gql.post('{ item(sku: "X") { sku } }')
    assert mutation["createItem"]["errors"] == [{"code": "UNAVAILABLE"}]
    [error] = query["errors"]
    assert error["extensions"]["code"] == "UNAVAILABLE"
    assert "could not be reached" in error["message"]


def test_a_failed_statement_on_a_live_connection_is_not_a_lost_connection() -> None:
    assert not connection_lost(ValueError("no"))
    assert connection_lost(ConnectionRefusedError(111, "refused"))


async def test_a_mutation_whose_result_cannot_be_read_back_reports_unavailable_in_its_payload(
    gql: GraphQLClient,
    uow: UnitOfWorkFactory,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await helpers.one_balance(uow, 5)
    order_id = await helpers.order(uow, ("WIDGET", 2))

    async def lost(*_: object, **__: object) -> None:
        raise Unavailable()

    # The payload's balances are the one thing it reads after the commit.
    monkeypatch.setattr(reads, "balances_by_id", lost)
    payload = (
        await gql.data(
            "mutation($id: ID!) { allocateOrder(id: $id) {"
            " allocations { balance { onHand } } errors { code } } }",
            id=to_global_id("SalesOrder", order_id),
        )
    )["allocateOrder"]

    assert payload == {"allocations": [], "errors": [{"code": "UNAVAILABLE"}]}
    # The change itself was committed: the message tells the client to read again.
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT sum(allocated) FROM inventory_balances")) == 2
