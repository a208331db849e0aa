"""AUTO_FILL_BACKORDERS=true: a receipt (a positive adjustInventory) fills its item's
backorders right after its own commit, as the same actor and request, and reports the
fill in `filled`; a fill that fails never undoes the receipt."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services import fill, orders
from services.domain.errors import version_conflict
from services.ports import UnitOfWorkFactory
from tests.conftest import AppClient, GraphQLClient
from tests.ledger import unbalanced
from tests.service import helpers

ADJUST = """mutation($qty: Int!) { adjustInventory(input: {sku: "WIDGET", lotNumber: "L2",
  locationCode: "BIN-1", quantity: $qty, reason: "receipt"}) {
  balance { id onHand allocated } adjustment { id quantity }
  filled { backorders { id status quantityAllocated salesOrder { id number version } }
           allocations { id quantity balance { id } salesOrder { id } }
           errors { code field message } }
  errors { code } } }"""
MOVEMENTS = """{ movements(filter: {kind: ALLOCATE}) { nodes { id actor requestId } } }"""


@pytest.fixture
async def auto_fill(app_client: AppClient) -> AsyncIterator[GraphQLClient]:
    async with app_client(auto_fill_backorders=True) as http:
        yield GraphQLClient(http)


async def waiting_order(uow: UnitOfWorkFactory) -> None:
    """SO-W waits for 3 WIDGET (none in stock); 2 in lot L1 are held by SO-H."""
    await helpers.one_balance(uow, 2)
    held = await orders.create_sales_order(uow, "C", "SO-H", [orders.LineInput("WIDGET", 2)])
    await orders.allocate_order(uow, held)
    waiting = await orders.create_sales_order(uow, "C", "SO-W", [orders.LineInput("WIDGET", 3)])
    await orders.allocate_order(uow, waiting)


async def adjust(gql: GraphQLClient, quantity: int, **headers: str) -> dict[str, Any]:
    response = await gql.http.post(
        "/graphql",
        json={"query": ADJUST, "variables": {"qty": quantity}},
        headers=headers,
    )
    assert response.status_code == 200
    payload: dict[str, Any] = response.json()["data"]["adjustInventory"]
    return payload


async def test_a_receipt_fills_the_waiting_backorder_as_the_same_actor_and_request(
    auto_fill: GraphQLClient, uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await waiting_order(uow)

    payload = await adjust(auto_fill, 10, **{"X-Request-Id": "receipt-42"})

    assert payload["errors"] == []
    assert (payload["balance"]["onHand"], payload["balance"]["allocated"]) == (10, 3)
    [backorder] = payload["filled"]["backorders"]
    assert (backorder["status"], backorder["quantityAllocated"]) == ("ALLOCATED", 3)
    assert backorder["salesOrder"]["number"] == "SO-W"
    [allocation] = payload["filled"]["allocations"]
    assert allocation["quantity"] == 3
    assert allocation["balance"]["id"] == payload["balance"]["id"]
    assert payload["filled"]["errors"] == []
    movements = (await auto_fill.data(MOVEMENTS))["movements"]["nodes"]
    newest = movements[0]  # newest first: the fill's
    assert (newest["actor"], newest["requestId"]) == ("anonymous", "receipt-42")
    assert await unbalanced(engine) == []


async def test_without_auto_fill_a_receipt_fills_nothing_and_filled_is_null(
    gql: GraphQLClient, uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await waiting_order(uow)
    payload = await adjust(gql, 10)
    assert payload["filled"] is None
    assert payload["balance"]["allocated"] == 0


async def test_a_write_off_or_a_refused_adjustment_fills_nothing(
    auto_fill: GraphQLClient, uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await waiting_order(uow)
    await adjust(auto_fill, 5)  # fills SO-W: 3 of the 5 allocated
    written_off = await adjust(auto_fill, -1)
    assert (written_off["errors"], written_off["filled"]) == ([], None)
    refused = await adjust(auto_fill, -4)  # would take on hand below allocated
    assert refused["errors"] == [{"code": "INSUFFICIENT_STOCK"}]
    assert (refused["balance"], refused["filled"]) == (None, None)


async def test_a_fill_that_fails_leaves_the_receipt_and_says_so_in_filled(
    auto_fill: GraphQLClient,
    uow: UnitOfWorkFactory,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await waiting_order(uow)

    async def lost_every_race(*_: object, **__: object) -> fill.FillResult:
        raise version_conflict(7, None)  # as when the fill's own retries run out

    monkeypatch.setattr(fill, "fill_backorders", lost_every_race)
    payload = await adjust(auto_fill, 10)

    assert payload["errors"] == []
    assert (payload["balance"]["onHand"], payload["balance"]["allocated"]) == (10, 0)
    assert payload["adjustment"]["quantity"] == 10
    assert payload["filled"]["backorders"] == payload["filled"]["allocations"] == []
    [error] = payload["filled"]["errors"]
    assert (error["code"], error["field"]) == ("VERSION_CONFLICT", None)
    on_hand = await auto_fill.data('{ item(sku: "WIDGET") { onHand allocated } }')
    assert on_hand["item"] == {"onHand": 12, "allocated": 2}  # the receipt stands


async def test_an_unexpected_failure_of_the_fill_is_logged_and_masked(
    auto_fill: GraphQLClient,
    uow: UnitOfWorkFactory,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await waiting_order(uow)

    async def broken(*_: object, **__: object) -> fill.FillResult:
        raise RuntimeError("internal detail that must not reach a client")

    monkeypatch.setattr(fill, "fill_backorders", broken)
    with caplog.at_level(logging.ERROR, logger="resolvers.mutations"):
        payload = await adjust(auto_fill, 10)

    assert payload["errors"] == []
    assert payload["balance"]["onHand"] == 10
    [error] = payload["filled"]["errors"]
    assert error["code"] == "UNAVAILABLE"
    assert "internal detail" not in error["message"]
    assert "the adjustment stands" in error["message"]
    [logged] = [r for r in caplog.records if "the receipt stands" in r.getMessage()]
    assert logged.exc_info is not None  # with its traceback, for the operator


async def test_a_receipt_with_a_key_whose_fill_failed_is_replayed_not_received_twice(
    app_client: AppClient,
    uow: UnitOfWorkFactory,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await waiting_order(uow)

    async def lost_every_race(*_: object, **__: object) -> fill.FillResult:
        raise version_conflict(7, None)

    monkeypatch.setattr(fill, "fill_backorders", lost_every_race)
    body = {"query": ADJUST, "variables": {"qty": 10}}
    async with app_client(auto_fill_backorders=True) as http:
        first = await http.post("/graphql", json=body, headers={"Idempotency-Key": "r-1"})
        again = await http.post("/graphql", json=body, headers={"Idempotency-Key": "r-1"})
        item = await GraphQLClient(http).data('{ item(sku: "WIDGET") { onHand } }')

    assert again.headers.get("idempotent-replayed") == "true"
    assert again.content == first.content
    assert item["item"]["onHand"] == 12
