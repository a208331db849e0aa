"""SPEC section 5 under real load: the server as deployed (uvicorn, 2 worker processes) and
many concurrent HTTP clients, judged by tests/load/checker.py on snapshots taken while
they run and at the end.

Bounded by calls, not by time: each client makes its planned number of calls however
slow the machine. `make soak` runs the same load and checker longer, with faults
(tests/load/soak.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.load import checker
from tests.load.conftest import REPORTS, load_and_check
from tests.load.server import LiveServer
from tests.load.workload import STRATEGIES, Config, Outcome, pk

CONFIG = Config(clients=32, calls_per_client=10, seed=20260101, snapshot_every=20)


async def test_racing_clients_never_break_an_invariant(
    live: LiveServer, engine: AsyncEngine
) -> None:
    report = await load_and_check(
        live, engine, CONFIG, "invariant load run (32 clients x 10 calls, 2 workers)"
    )

    assert report.violations == [], report.summary()
    assert report.unexpected == [], report.summary()
    # Every client made every call it planned: nothing cut the run short.
    assert report.calls == CONFIG.calls == 320, report.summary()
    # No faults here: every call got an answer, success or a domain error.
    assert report.mutations(Outcome.UNKNOWN) == [], report.summary()
    # The even-numbered clients sent theirs with an Idempotency-Key, and none was
    # refused for it (an unexpected answer would say so).
    assert {op.client % 2 for op in report.keyed()} == {0}, report.summary()
    assert len(report.mutations(Outcome.OK)) > len(report.history) / 2, report.summary()
    # The clients really collided: races inside the server, stale expectedVersions.
    assert report.retries > 0, report.summary()
    assert report.version_conflicts(guarded=True) > 0, report.summary()
    # The checker judged a snapshot every 20 calls, the database never failing it, and
    # the clients were at work while it did.
    assert len(report.snapshots) == CONFIG.calls // 20 - 1, report.summary()
    assert report.snapshots_missed == [], report.summary()
    assert max(in_flight for _, in_flight in report.snapshots) > 0, report.summary()
    # Lines were added and deleted, and deletions refused for allocation lines; every
    # strategy allocated. (The whole mix, by outcome and code, is in the summary.)
    assert report.succeeded("addSalesOrderLine"), report.summary()
    assert report.succeeded("deleteSalesOrderLine"), report.summary()
    assert report.codes(Outcome.REJECTED)["LINE_HAS_ALLOCATIONS"] > 0, report.summary()
    assert set(report.strategies()) == {s or "default" for s in STRATEGIES}, report.summary()
    # The checker had something to check in each of its ways.
    for counted in (
        "orders checked right after their last allocation",
        "order versions checked",
        "balance versions checked exactly",
        "lines whose last update was checked",
        "orders whose lines were checked",
        "serialized lines reported skipped",
        "packed lines",
        "allocation lines",
        "balances compared with the snapshot before",
        "orders compared with the snapshot before",
        "balances checked against their movements",
    ):
        assert report.checked[counted] > 0, (counted, report.summary())


# -- helpers for the two focused races below ---------------------------------------------------


async def gql(http: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    response = await http.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def stock(http: httpx.AsyncClient, sku: str, lot: str, location: str, quantity: int) -> None:
    data = await gql(
        http,
        "mutation($i: AdjustInventoryInput!) { adjustInventory(input: $i) { errors { code } } }",
        i={"sku": sku, "lotNumber": lot, "locationCode": location, "quantity": quantity},
    )
    assert data["adjustInventory"]["errors"] == []


async def warehouse(http: httpx.AsyncClient, sku: str, *bins: str) -> None:
    data = await gql(
        http,
        "mutation($i: CreateItemInput!) { createItem(input: $i) { errors { code } } }",
        i={"sku": sku, "name": sku},
    )
    assert data["createItem"]["errors"] == []
    for code in bins:
        data = await gql(
            http,
            "mutation($i: CreateLocationInput!) { createLocation(input: $i) { errors { code } } }",
            i={"code": code, "name": code},
        )
        assert data["createLocation"]["errors"] == []


async def order(http: httpx.AsyncClient, sku: str, quantity: int) -> str:
    data = await gql(
        http,
        "mutation($i: CreateSalesOrderInput!) { createSalesOrder(input: $i) { "
        "salesOrder { id } errors { code } } }",
        i={"customer": "C", "lines": [{"sku": sku, "quantity": quantity}]},
    )
    order_id: str = data["createSalesOrder"]["salesOrder"]["id"]
    return order_id


ALLOCATE = """mutation($id: ID!) { allocateOrder(id: $id) {
  allocations { quantity }
  salesOrder { lines { backorders { quantity quantityAllocated status } } }
  errors { code message } } }"""


async def test_64_clients_racing_for_50_units_of_one_balance(
    live: LiveServer, engine: AsyncEngine
) -> None:
    limits = httpx.Limits(max_connections=80, max_keepalive_connections=80)
    async with httpx.AsyncClient(base_url=live.url, timeout=60, limits=limits) as http:
        await warehouse(http, "HOT-SKU", "BIN-1")
        await stock(http, "HOT-SKU", "L1", "BIN-1", 50)
        orders = await asyncio.gather(*(order(http, "HOT-SKU", 1) for _ in range(64)))
        retries_before = live.retries()

        answers = await asyncio.gather(*(gql(http, ALLOCATE, id=o) for o in orders))

    retries = live.retries() - retries_before
    payloads = [answer["allocateOrder"] for answer in answers]
    # No VERSION_CONFLICT, no other error: internal contention is the server's to retry.
    assert [p["errors"] for p in payloads] == [[]] * 64
    allocated = sorted(sum(a["quantity"] for a in p["allocations"]) for p in payloads)
    assert allocated == [0] * 14 + [1] * 50
    backorders = [
        bo for p in payloads for line in p["salesOrder"]["lines"] for bo in line["backorders"]
    ]
    assert backorders == [{"quantity": 1, "quantityAllocated": 0, "status": "OPEN"}] * 14
    snapshot = await checker.read_snapshot(engine)
    [balance] = snapshot.balances.values()
    assert (balance.on_hand, balance.allocated) == (50, 50)
    assert sorted(bo.status for bo in snapshot.backorders.values()) == ["OPEN"] * 14
    assert checker.check(snapshot).violations == []
    REPORTS.append(
        f"hot SKU: 64 concurrent allocateOrder for 1 unit of a balance of 50: 50 allocated, "
        f"14 backordered, 0 errors, {retries} internal retries"
    )


ORDER_STATE = "query($id: ID!) { salesOrder(id: $id) { version allocations { id } } }"
REMOVE = """mutation($ids: [ID!]!, $v: Int) {
  removeAllocationLines(ids: $ids, expectedVersion: $v) {
    removedIds salesOrder { version } errors { code currentVersion } } }"""
PACK = """mutation($id: ID!, $v: Int) { packAllocatedOrder(id: $id, expectedVersion: $v) {
  packedLines { quantity } salesOrder { version } errors { code field currentVersion } } }"""


async def test_a_client_packing_at_a_stale_version_gets_version_conflict_and_changes_nothing(
    live: LiveServer, engine: AsyncEngine
) -> None:
    async with (
        httpx.AsyncClient(base_url=live.url, timeout=30) as alice,
        httpx.AsyncClient(base_url=live.url, timeout=30) as bob,
    ):
        await warehouse(alice, "WIDGET", "BIN-1", "BIN-2")
        await stock(alice, "WIDGET", "L1", "BIN-1", 10)
        await stock(alice, "WIDGET", "L2", "BIN-2", 10)
        order_id = await order(alice, "WIDGET", 15)
        allocated = await gql(alice, ALLOCATE, id=order_id)
        assert [a["quantity"] for a in allocated["allocateOrder"]["allocations"]] == [10, 5]

        # Both read the order at the same version v.
        seen_by_alice = (await gql(alice, ORDER_STATE, id=order_id))["salesOrder"]
        seen_by_bob = (await gql(bob, ORDER_STATE, id=order_id))["salesOrder"]
        assert seen_by_alice == seen_by_bob
        v = seen_by_alice["version"]

        removed = await gql(alice, REMOVE, ids=[seen_by_alice["allocations"][0]["id"]], v=v)
        assert removed["removeAllocationLines"]["errors"] == []
        assert removed["removeAllocationLines"]["salesOrder"]["version"] == v + 1
        before = await checker.read_snapshot(engine)

        packed = await gql(bob, PACK, id=order_id, v=v)

        assert packed["packAllocatedOrder"] == {
            "packedLines": [],
            "salesOrder": None,
            "errors": [
                {"code": "VERSION_CONFLICT", "field": ["expectedVersion"], "currentVersion": v + 1}
            ],
        }
        assert await checker.read_snapshot(engine) == before  # nothing changed
        assert checker.check(before).violations == []

        # Bob reads again and packs what is left, at the version he was told.
        again = await gql(bob, PACK, id=order_id, v=v + 1)
        assert again["packAllocatedOrder"]["errors"] == []
        assert [p["quantity"] for p in again["packAllocatedOrder"]["packedLines"]] == [5]
    assert (await checker.read_snapshot(engine)).orders[pk(order_id)].version == v + 2


# -- a race that the load run found --------------------------------------------------------------

CANCEL_READING_ITS_LINE = """mutation($id: ID!) { cancelBackorder(id: $id) {
  backorder { status salesOrderLine { id } } errors { code } } }"""
DELETE_LINE = "mutation($id: ID!) { deleteSalesOrderLine(id: $id) { errors { code } } }"
BACKORDERED = """mutation($id: ID!) { allocateOrder(id: $id) {
  salesOrder { lines { id backorders { id } } } errors { code } } }"""
RACES, AT_ONCE = 64, 8  # the bug below showed in about a third of such races here


async def answer(http: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    response = await http.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def cancel_racing_deletion(http: httpx.AsyncClient) -> tuple[dict[str, Any], ...]:
    """An order line with nothing in stock, so backordered; then its backorder cancelled
    and the line deleted at once (a line without allocation lines may be deleted)."""
    order_id = await order(http, "NO-STOCK", 2)
    data = await gql(http, BACKORDERED, id=order_id)
    (line,) = data["allocateOrder"]["salesOrder"]["lines"]
    (backorder,) = line["backorders"]
    return tuple(
        await asyncio.gather(
            answer(http, CANCEL_READING_ITS_LINE, id=backorder["id"]),
            answer(http, DELETE_LINE, id=line["id"]),
        )
    )


async def test_a_cancel_racing_the_deletion_of_its_line_never_answers_unexpected_error(
    live: LiveServer, engine: AsyncEngine
) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as http:
        await warehouse(http, "NO-STOCK")
        for _ in range(RACES // AT_ONCE):
            races = await asyncio.gather(*(cancel_racing_deletion(http) for _ in range(AT_ONCE)))
            for cancelled, deleted in races:
                # Whichever commits first, both answer with a payload: the deletion
                # succeeds, and the cancel either succeeded first or finds no backorder.
                assert "errors" not in deleted, deleted
                assert deleted["data"]["deleteSalesOrderLine"]["errors"] == []
                assert "errors" not in cancelled, cancelled
                codes = [e["code"] for e in cancelled["data"]["cancelBackorder"]["errors"]]
                assert codes in ([], ["NOT_FOUND"]), cancelled
    assert checker.check(await checker.read_snapshot(engine)).violations == []


ALLOCATE_ONE = (
    "mutation($id: ID!) { allocateOrder(id: $id) { allocations { id } errors { code } } }"
)
ITS_ALLOCATIONS = "query($id: ID!) { salesOrder(id: $id) { allocations { id } } }"
REMOVE_THEM = """mutation($ids: [ID!]!) { removeAllocationLines(ids: $ids) {
  removedIds errors { code } } }"""
# Before payloads were built from what their unit of work wrote (issue 8), 1 to 10 in 100
# of these races lost a line from allocateOrder's answer.
ROUNDS, PAIRS = 1, 48


async def allocation_racing_removal(http: httpx.AsyncClient) -> tuple[set[str], set[str]]:
    """An order of 1, allocated while another client reads the order until it sees the
    allocation line, and removes it at once. What allocateOrder answered it had made,
    and what was removed."""
    order_id = await order(http, "PLENTY", 1)
    answered: list[dict[str, Any]] = []
    removed: set[str] = set()

    async def allocate() -> None:
        answered.append(await gql(http, ALLOCATE_ONE, id=order_id))

    async def remove_once_seen() -> None:
        while not answered:
            data = await gql(http, ITS_ALLOCATIONS, id=order_id)
            ids = [a["id"] for a in data["salesOrder"]["allocations"]]
            if ids:
                data = await gql(http, REMOVE_THEM, ids=ids)
                removed.update(data["removeAllocationLines"]["removedIds"])
                return

    await asyncio.gather(allocate(), remove_once_seen())
    (payload,) = answered
    assert payload["allocateOrder"]["errors"] == [], payload
    return {a["id"] for a in payload["allocateOrder"]["allocations"]}, removed


async def test_an_allocation_line_removed_at_once_is_still_in_the_answer_that_made_it(
    live: LiveServer, engine: AsyncEngine
) -> None:
    limits = httpx.Limits(max_connections=2 * PAIRS + 8)
    async with httpx.AsyncClient(base_url=live.url, timeout=60, limits=limits) as http:
        await warehouse(http, "PLENTY", "BIN-1")
        await stock(http, "PLENTY", "L1", "BIN-1", ROUNDS * PAIRS)
        for _ in range(ROUNDS):
            races = await asyncio.gather(*(allocation_racing_removal(http) for _ in range(PAIRS)))
            for answered, removed in races:
                assert removed <= answered, (answered, removed)
    assert checker.check(await checker.read_snapshot(engine)).violations == []
