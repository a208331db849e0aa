"""A spent retry budget as a client sees it: VERSION_CONFLICT with the current version
and no field, HTTP 200, nothing written (README, "The retry budget")."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services import orders, retry
from services.ports import UnitOfWorkFactory
from tests.conftest import GraphQLClient
from tests.load import checker
from tests.service import helpers
from tests.service.races import before_writes

ORDER = """query($number: String!) { salesOrder(number: $number) {
  id version status lines { id quantity quantityAllocated quantityBackordered }
  allocations { id } backorders { id } } }"""
ALLOCATE = """mutation($id: ID!) { allocateOrder(id: $id) {
  salesOrder { id } allocations { id } errors { code field message currentVersion } } }"""
ATTEMPTS = 8  # README: at most 8 attempts in all


async def test_a_spent_retry_budget_is_a_version_conflict_without_a_field(
    gql: GraphQLClient,
    uow: UnitOfWorkFactory,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await helpers.one_balance(uow, 10)
    order_pk = await helpers.order(uow, ("WIDGET", 4), number="SO-1")
    (line_row,) = (await checker.read_snapshot(engine)).lines_of(order_pk)
    before: dict[str, Any] = (await gql.data(ORDER, number="SO-1"))["salesOrder"]
    (line,) = before["lines"]
    changes = 0

    async def another_client_raises_the_line() -> None:
        nonlocal changes
        changes += 1
        await orders.update_sales_order_line(uow, line_row.id, 4 + changes, None)

    # The server's own use case, on the server's own connections; only the unit-of-work
    # factory it is given is wrapped, so that another connection commits a change to the
    # order before each attempt writes.
    allocate_order = orders.allocate_order

    async def allocate_losing_every_attempt(
        factory: UnitOfWorkFactory, *args: Any, **kwargs: Any
    ) -> orders.AllocationResult:
        return await allocate_order(
            before_writes(factory, another_client_raises_the_line), *args, **kwargs
        )

    monkeypatch.setattr(orders, "allocate_order", allocate_losing_every_attempt)
    retries_before = retry.retry_count

    payload = (await gql.data(ALLOCATE, id=before["id"]))["allocateOrder"]  # HTTP 200

    assert changes == ATTEMPTS
    assert (payload["salesOrder"], payload["allocations"]) == (None, [])
    [error] = payload["errors"]
    assert (error["code"], error["field"], error["currentVersion"]) == (
        "VERSION_CONFLICT",
        None,
        before["version"] + ATTEMPTS,
    )
    assert retry.retry_count - retries_before == ATTEMPTS - 1
    after = (await gql.data(ORDER, number="SO-1"))["salesOrder"]
    assert after == {
        **before,
        "version": before["version"] + ATTEMPTS,
        "lines": [{**line, "quantity": 4 + ATTEMPTS}],
    }
    assert (after["allocations"], after["backorders"]) == ([], [])
