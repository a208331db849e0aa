"""The retry budget spent for real: before every attempt writes, another connection
commits a change to the same order, so every attempt loses (README, "The retry budget")."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services import orders, retry
from services.domain.errors import DomainError, ErrorCode
from services.ports import UnitOfWorkFactory
from tests.load import checker
from tests.service import helpers
from tests.service.races import before_writes, world

ATTEMPTS = 8  # README: at most 8 attempts in all


async def test_an_order_changed_before_every_attempt_is_a_version_conflict_with_nothing_written(
    uow: UnitOfWorkFactory, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    balance = await helpers.one_balance(uow, 10)
    order_id = await helpers.order(uow, ("WIDGET", 4))
    (line,) = (await checker.read_snapshot(engine)).lines_of(order_id)
    before = await world(engine)
    assert before.versions == {order_id: 1}
    changes = 0

    async def another_client_raises_the_line() -> None:
        # A whole use case on its own connection, committed while the attempt that is
        # about to write still holds the order as it loaded it.
        nonlocal changes
        changes += 1
        await orders.update_sales_order_line(uow, line.id, 4 + changes, None)

    retries_before = retry.retry_count
    with (
        caplog.at_level(logging.INFO, logger="services.retry"),
        pytest.raises(DomainError) as raised,
    ):
        await orders.allocate_order(before_writes(uow, another_client_raises_the_line), order_id)

    error = raised.value
    assert error.code is ErrorCode.VERSION_CONFLICT
    assert changes == ATTEMPTS  # every attempt lost to a change it had not seen
    # The current version, and no subject: the client sent no expectedVersion, so no
    # argument of its is at fault (the API gives no field).
    assert error.current_version == 1 + ATTEMPTS
    assert (error.subject, error.index) == (None, None)
    # Only the other client's changes were written: no allocation line, nothing reserved.
    assert await world(engine) == replace(
        before,
        versions={order_id: 1 + ATTEMPTS},
        lines={line.id: (4 + ATTEMPTS, 0)},
    )
    assert (await world(engine)).balances == {balance: (10, 0)}
    # Counted: one retry and one log line for each attempt but the last, then the warning.
    assert retry.retry_count - retries_before == ATTEMPTS - 1
    logged = [r.getMessage() for r in caplog.records if r.name == "services.retry"]
    assert [message.split(";")[0] for message in logged[:-1]] == [
        f"conflict on attempt {n}" for n in range(1, ATTEMPTS)
    ]
    assert logged[-1] == f"retry budget of {ATTEMPTS} attempts spent"
