"""A mutation holds its pooled connection for its transaction, not for its payload: the
payload is built from what the unit of work wrote, so the connection goes back to the
pool before it is built. An idempotent request's transaction is still open then (its
key and answer commit with the change), so it keeps the connection to the end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from db.database import Database
from resolvers.graph import Graph, global_id
from schema.types import SalesOrder
from services.ports import UnitOfWorkFactory
from tests.conftest import AppClient
from tests.service import helpers

ALLOCATE = """mutation($id: ID!) {
  allocateOrder(id: $id) { allocations { quantity } errors { code } } }"""


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What happened, in order: a connection given back to the pool, a payload built."""
    seen: list[str] = []

    def spy(owner: type, name: str, event: str) -> None:
        original: Callable[..., Any] = getattr(owner, name)

        async def recorded(*args: Any, **kwargs: Any) -> Any:
            seen.append(event)
            return await original(*args, **kwargs)

        monkeypatch.setattr(owner, name, recorded)

    spy(Database, "release", "connection given back")
    spy(Graph, "allocations", "payload built")
    return seen


async def allocate(
    app_client: AppClient, order_id: int, headers: dict[str, str], events: list[str]
) -> None:
    events.clear()  # what the set-up's own units of work did
    async with app_client() as http:
        response = await http.post(
            "/graphql",
            json={"query": ALLOCATE, "variables": {"id": global_id(SalesOrder, order_id)}},
            headers=headers,
        )
    payload = response.json()["data"]["allocateOrder"]
    assert payload == {"allocations": [{"quantity": 2}], "errors": []}


async def test_a_mutation_gives_its_connection_back_before_its_payload_is_built(
    app_client: AppClient, uow: UnitOfWorkFactory, events: list[str]
) -> None:
    await helpers.one_balance(uow, 5)
    order_id = await helpers.order(uow, ("WIDGET", 2))

    await allocate(app_client, order_id, {}, events)

    assert events == ["connection given back", "payload built"]


async def test_an_idempotent_mutation_keeps_its_connection_until_its_answer_is_kept(
    app_client: AppClient, uow: UnitOfWorkFactory, events: list[str]
) -> None:
    await helpers.one_balance(uow, 5)
    order_id = await helpers.order(uow, ("WIDGET", 2))

    await allocate(app_client, order_id, {"Idempotency-Key": "k-1"}, events)

    assert events == ["payload built", "connection given back"]
