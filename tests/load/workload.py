"""The load: concurrent clients issue a seeded random mix of mutations against a live server
over HTTP and keep a history of what each one saw. tests/load/checker.py judges it.

A run is bounded by calls, never by the clock: each client makes its planned number of
calls, faults strike after a given number of calls, and so do the snapshots that the
checker takes while the clients go on. A slow machine makes a run slower, not shorter.

Jepsen's way: the clients know only what the API told them. Every mutation is recorded
with its inputs, when it started and ended, and its outcome: OK (the payload had no
errors), REJECTED (a domain error: nothing may have changed), UNKNOWN (UNAVAILABLE, a
broken connection or a server killed mid-request: it may or may not have been applied)
or REFUSED (the connection was never made: nothing was sent).

Half the clients (the even-numbered) send every mutation with an Idempotency-Key (its
tag) and, as docs/api.md advises, send it again after a lost answer (a cut connection,
UNAVAILABLE, 409, 503) until they get one: their calls end OK or REJECTED, never
UNKNOWN, and the checker holds each to having been applied exactly as often as it says.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import httpx

from resolvers.ids import parse_global_id, to_global_id

# -- the history -----------------------------------------------------------------------------

# A mutation whose payload answered but one of whose nested objects could not be read.
READING_THE_PAYLOAD = "UNAVAILABLE (reading the payload)"

# Not a limit on a run: only a guard against a hang, so that a server that stops
# answering fails the test instead of blocking it for ever. A request that takes this
# long is recorded as a timeout (UNKNOWN), and a server refusing connections this long
# makes its call REFUSED; the tests fail on either. Far above anything a healthy server
# on a busy 2-core machine needs (calls take well under a second; a restart some).
HANG_GUARD_SECONDS = 300.0


class Outcome(StrEnum):
    OK = "OK"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"
    REFUSED = "REFUSED"


@dataclass
class Op:
    """One mutation as its client saw it. Times are time.monotonic()."""

    seq: int
    client: int
    name: str  # the GraphQL mutation
    tag: str  # unique; sent where the API keeps it (customer, reason)
    order_id: int | None  # the order it concerns, when the client knows it
    args: dict[str, Any]
    guarded: bool = False  # sent expectedVersion
    key: str | None = None  # the Idempotency-Key it was sent with
    attempts: int = 1  # how often it was sent (with its key, after lost answers)
    start: float = 0.0
    end: float = math.inf  # inf: the server may still be working on it
    outcome: Outcome = Outcome.UNKNOWN
    code: str | None = None  # the error code, or what broke
    result: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"#{self.seq} {self.name}({self.args}) -> {self.outcome} {self.code or ''}".strip()


@dataclass
class FaultEvent:
    name: str
    calls: int  # made when it struck
    start: float
    end: float
    detail: str
    recovered_after: float | None = None  # seconds until a mutation started after it succeeded


@dataclass
class Fault:
    """An action run once the clients have made `after_calls` calls between them."""

    name: str
    after_calls: int
    action: Callable[[], Awaitable[str]]


@dataclass
class Config:
    clients: int = 32
    calls_per_client: int = 10  # each client makes exactly this many, then stops
    seed: int = 1
    items: int = 3  # non-serialized; one serialized item comes on top
    guarded_share: float = 0.25  # order mutations sent with expectedVersion
    query_share: float = 0.05  # reads mixed in, to see how queries fail under faults
    request_timeout: float = HANG_GUARD_SECONDS
    settle: int = 20  # orders allocated once more at the end, see Load.settle
    faults: Sequence[Fault] = ()
    snapshot_every: int = 0  # calls between the observer's snapshots; 0: none
    keyed: bool = True  # even-numbered clients send Idempotency-Key and retry lost answers

    @property
    def calls(self) -> int:
        return self.clients * self.calls_per_client

    def __post_init__(self) -> None:
        late = [f.name for f in self.faults if not 0 < f.after_calls < self.calls]
        if late:
            raise ValueError(f"faults {late} would strike outside the run's {self.calls} calls")


class Observer(Protocol):
    """Told every `snapshot_every` calls, while the clients go on (checker.Watcher)."""

    async def __call__(self, history: Sequence[Op], calls: int, in_flight: int) -> None: ...


@dataclass
class LoadReport:
    config: Config
    history: list[Op]
    seconds: float = 0.0  # how long the clients took: a figure, never a bound
    calls: int = 0  # made by the clients (mutations and queries; set-up and settle aside)
    queries: Counter[str] = field(default_factory=Counter)  # OK / UNAVAILABLE / ...
    refused_attempts: int = 0  # connects refused (server down), tried again
    unexpected: list[str] = field(default_factory=list)  # masked errors, 5xx, bad answers
    server_errors: list[str] = field(default_factory=list)  # behind the masked ones
    faults: list[FaultEvent] = field(default_factory=list)
    retries: int = 0  # internal retries, from the server's log
    resent: Counter[str] = field(default_factory=Counter)  # keyed calls sent again, by why
    replays: int = 0  # answers with Idempotent-Replayed: true
    violations: list[str] = field(default_factory=list)  # from the checker
    checked: Counter[str] = field(default_factory=Counter)  # from the checker
    snapshots: list[tuple[int, int]] = field(default_factory=list)  # (calls, in flight) at each
    snapshots_missed: list[str] = field(default_factory=list)  # the database was down

    def mutations(self, outcome: Outcome | None = None) -> list[Op]:
        return [op for op in self.history if outcome is None or op.outcome is outcome]

    def keyed(self) -> list[Op]:
        return [op for op in self.history if op.key is not None]

    def codes(self, outcome: Outcome) -> Counter[str]:
        return Counter(op.code or "?" for op in self.mutations(outcome))

    def succeeded(self, name: str) -> list[Op]:
        return [op for op in self.mutations(Outcome.OK) if op.name == name]

    def strategies(self) -> Counter[str]:
        """Successful allocateOrder calls by the strategy they asked for."""
        return Counter(
            op.args.get("strategy") or "default" for op in self.succeeded("allocateOrder")
        )

    def fills(self) -> str:
        """What the fillBackorders calls did: a run whose fills never allocated proves
        little about them."""
        calls = [op for op in self.history if op.name == "fillBackorders"]
        done = self.succeeded("fillBackorders")
        made = sum(len(op.result["allocations"]) for op in done)
        orders = len({order for op in done for order in op.result["orders"].values()})
        return (
            f"fillBackorders: {len(calls)} calls, {len(done)} succeeded, {made} allocation "
            f"lines made on {orders} orders"
        )

    def version_conflicts(self, guarded: bool) -> int:
        return sum(
            1
            for op in self.mutations(Outcome.REJECTED)
            if op.code == "VERSION_CONFLICT" and op.guarded is guarded
        )

    def summary(self) -> str:
        ok = len(self.mutations(Outcome.OK))
        in_flight = [n for _, n in self.snapshots]
        lines = [
            f"{self.calls} calls by {self.config.clients} clients "
            f"({self.config.calls_per_client} each, seed {self.config.seed}) in "
            f"{self.seconds:.1f} s; {len(self.history)} mutations in all (set-up and "
            f"settling included): {ok} succeeded, "
            f"{self.retries} internal retries, "
            f"{self.version_conflicts(True)} VERSION_CONFLICT answers to expectedVersion, "
            f"{self.version_conflicts(False)} without it (retry budget spent), "
            f"{len(self.violations)} invariant violations",
            "  rejected: " + _counts(self.codes(Outcome.REJECTED)),
            "  unknown outcome: " + _counts(self.codes(Outcome.UNKNOWN)),
            f"  queries: {_counts(self.queries)}; connects refused and retried: "
            f"{self.refused_attempts}; unexpected answers: {len(self.unexpected)}",
            "  checked: " + _counts(self.checked),
            f"  snapshots checked during the run: {len(self.snapshots)} "
            f"(calls in flight at each: {min(in_flight, default=0)} to "
            f"{max(in_flight, default=0)}), missed: {len(self.snapshots_missed)} "
            f"{self.snapshots_missed or ''}".rstrip(),
            "  allocateOrder by strategy: " + _counts(self.strategies()),
            "  " + self.fills(),
            f"  with an Idempotency-Key: {len(self.keyed())} mutations, "
            f"{sum(op.attempts > 1 for op in self.keyed())} of them sent again after a "
            f"lost answer ({_counts(self.resent)}), {self.replays} answered by replay",
        ]
        for event in self.faults:
            recovered = (
                f"a mutation succeeded {event.recovered_after:.2f} s after"
                if event.recovered_after is not None
                else "no mutation succeeded after it"
            )
            lines.append(
                f"  fault {event.name} after {event.calls} calls, at {event.start:.1f} s, for "
                f"{event.end - event.start:.2f} s ({event.detail}); {recovered}"
            )
        lines += [f"  VIOLATION {v}" for v in self.violations[:20]]
        lines += [f"  UNEXPECTED {u}" for u in self.unexpected[:10]]
        lines += [f"  SERVER ERROR {e}" for e in self.server_errors[:10]]
        return "\n".join(lines)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"


# -- what the clients know ---------------------------------------------------------------------

ORDER = (
    "id version lines { id quantity } allocations { id quantityPacked } backorders { id status }"
)
ERRORS = "errors { code field currentVersion }"

CREATE_ITEM = "mutation($input: CreateItemInput!) { createItem(input: $input) { " + ERRORS + " } }"
CREATE_LOCATION = (
    "mutation($input: CreateLocationInput!) { createLocation(input: $input) { " + ERRORS + " } }"
)
CREATE_ORDER = (
    "mutation($input: CreateSalesOrderInput!) { createSalesOrder(input: $input) { "
    f"salesOrder {{ {ORDER} }} {ERRORS} }} }}"
)
ADD_LINE = (
    "mutation($order: ID!, $sku: String!, $q: Int!, $v: Int) { addSalesOrderLine("
    "salesOrderId: $order, sku: $sku, quantity: $q, expectedVersion: $v) { "
    f"salesOrder {{ {ORDER} }} {ERRORS} }} }}"
)
DELETE_LINE = (
    "mutation($id: ID!, $v: Int) { deleteSalesOrderLine(id: $id, expectedVersion: $v) { "
    f"salesOrder {{ {ORDER} }} {ERRORS} }} }}"
)
UPDATE_LINE = (
    "mutation($id: ID!, $q: Int!, $v: Int) { updateSalesOrderLine(id: $id, quantity: $q, "
    f"expectedVersion: $v) {{ salesOrder {{ {ORDER} }} {ERRORS} }} }}"
)
ALLOCATE = (
    "mutation($id: ID!, $v: Int, $strategy: AllocationStrategy) { allocateOrder(id: $id, "
    "expectedVersion: $v, strategy: $strategy) { "
    f"salesOrder {{ {ORDER} }} allocations {{ id quantity salesOrderLine {{ id }} "
    f"balance {{ id }} }} {ERRORS} }} }}"
)
PACK = (
    "mutation($id: ID!, $v: Int) { packAllocatedOrder(id: $id, expectedVersion: $v) { "
    f"salesOrder {{ {ORDER} }} packedLines {{ id quantity }} {ERRORS} }} }}"
)
REMOVE = (
    "mutation($ids: [ID!]!, $v: Int) { removeAllocationLines(ids: $ids, expectedVersion: $v) "
    f"{{ salesOrder {{ {ORDER} }} removedIds {ERRORS} }} }}"
)
CANCEL = (
    "mutation($id: ID!, $reason: String, $v: Int) { cancelBackorder(id: $id, reason: $reason, "
    f"expectedVersion: $v) {{ salesOrder {{ {ORDER} }} backorder {{ id status }} {ERRORS} }} }}"
)
DELETE = (
    "mutation($id: ID!, $v: Int) { deleteBackorder(id: $id, expectedVersion: $v) { "
    f"salesOrder {{ {ORDER} }} {ERRORS} }} }}"
)
ADJUST = (
    "mutation($input: AdjustInventoryInput!) { adjustInventory(input: $input) { "
    f"balance {{ id }} adjustment {{ id quantity }} {ERRORS} }} }}"
)
FILL = (
    "mutation($sku: String!, $limit: Int) { fillBackorders(sku: $sku, limit: $limit) { "
    f"backorders {{ id status salesOrder {{ {ORDER} }} }} allocations {{ id quantity "
    f"salesOrderLine {{ id }} balance {{ id }} salesOrder {{ id }} }} {ERRORS} }} }}"
)
READ_ORDER = (
    "query($id: ID!) { salesOrder(id: $id) { id version status lines { quantityAllocated "
    "quantityBackordered item { available } } } }"
)

# A serialized item: ordered, stocked, and never allocated (SPEC section 4).
SERIAL = "SERIAL-1"
STRATEGIES = (None, "FEFO", "FIFO", "LOCATION")  # None: the default, FEFO
# The one error that does not stop a mutation: allocateOrder skipped a serialized line.
NOT_STOPPING = {"SERIALIZED_ITEM"}

# fillBackorders' limit: none (the server's default), or a few backorders at a time.
FILL_LIMITS = (None, 1, 2, 5)

LOTS = ("L1", "L2", "L3")
# Pick sequences that put another place first than either date does, so that each
# strategy takes from a different balance of the set-up's stock (see Load.setup).
PICK_SEQUENCE = {"BIN-1": 2, "BIN-2": 3, "BIN-3": 1}
LOCATIONS = tuple(PICK_SEQUENCE)
# Lot dates (of 2026), so that FEFO has choices to make: L2 expires, L1 and L3 do not.
LOT_DATES = {
    "L1": ("2026-01-01T00:00:00+00:00", None),
    "L2": ("2026-01-02T00:00:00+00:00", "2026-09-01T00:00:00+00:00"),
    "L3": ("2026-01-03T00:00:00+00:00", None),
}


def pk(global_id: str) -> int:
    parsed = parse_global_id(global_id)
    assert parsed is not None, global_id
    return parsed[1]


def _made(allocations: list[dict[str, Any]]) -> dict[int, tuple[int, int, int]]:
    """Allocation lines an answer reports: id -> (line id, balance id, quantity), as the
    checker holds them."""
    return {
        pk(a["id"]): (pk(a["salesOrderLine"]["id"]), pk(a["balance"]["id"]), a["quantity"])
        for a in allocations
    }


@dataclass
class KnownOrder:
    id: int
    version: int
    lines: dict[int, int]  # line id -> quantity
    allocations: dict[int, bool]  # allocation line id -> packed
    backorders: dict[int, str]  # backorder id -> status


def _has_open_backorder(order: KnownOrder) -> bool:
    return "OPEN" in order.backorders.values()


# The orders each operation has something to work on (as far as the clients know).
FITS: dict[str, Callable[[KnownOrder], bool]] = {
    "update": lambda order: bool(order.lines),
    # Half on orders with allocation lines, mostly refused (LINE_HAS_ALLOCATIONS), half
    # on orders without, which may lose a line.
    "delete line": lambda order: bool(order.lines and order.allocations),
    "delete free line": lambda order: bool(order.lines and not order.allocations),
    "pack": lambda order: not all(order.allocations.values()),
    "remove": lambda order: not all(order.allocations.values()),
    "cancel": _has_open_backorder,
    "delete": _has_open_backorder,
}


class World:
    """What the clients have learnt from answers; shared (one event loop, no locks)."""

    def __init__(self, skus: list[str]) -> None:
        self.skus = skus
        self.orders: dict[int, KnownOrder] = {}
        self.order_ids: list[int] = []  # in the order they became known
        # Allocation lines that an allocateOrder answer has listed. Clients remove only
        # these: an answer read after one of its lines was removed leaves that line out
        # (a product bug, see test_invariants.py), which the checker would report.
        self.reported: set[int] = set()

    def learn(self, order: dict[str, Any] | None) -> None:
        if not order:
            return
        known = KnownOrder(
            pk(order["id"]),
            order["version"],
            {pk(line["id"]): line["quantity"] for line in order["lines"]},
            {pk(a["id"]): a["quantityPacked"] > 0 for a in order["allocations"]},
            {pk(b["id"]): b["status"] for b in order["backorders"]},
        )
        before = self.orders.get(known.id)
        if before is None:
            self.order_ids.append(known.id)
        if before is None or before.version <= known.version:  # answers may overtake
            self.orders[known.id] = known

    def pick(
        self, rng: random.Random, fit: Callable[[KnownOrder], bool] = lambda _: True
    ) -> KnownOrder:
        """Mostly one of the newest orders, so that clients keep meeting on the same ones
        however long the run; one that the operation can work on, where there is one."""
        ids = self.order_ids[-40:] if rng.random() < 0.8 else self.order_ids
        fitting = [i for i in ids if fit(self.orders[i])]
        return self.orders[rng.choice(fitting or ids)]


# -- the run ---------------------------------------------------------------------------------


class Load:
    def __init__(self, base_url: str, config: Config, observer: Observer | None = None) -> None:
        self.base_url = base_url
        self.config = config
        self.observer = observer
        self.skus = [f"HOT-{i + 1}" for i in range(config.items)]
        self.world = World(self.skus)
        self.report = LoadReport(config, [])
        self.in_flight = 0  # clients in the middle of a call
        self.progress = asyncio.Condition()  # notified after every call a client makes
        self.t0 = time.monotonic()
        self.http: httpx.AsyncClient | None = None

    # -- HTTP --------------------------------------------------------------------------------

    async def _post(
        self, query: str, variables: dict[str, Any], key: str | None = None
    ) -> dict[str, Any] | str:
        """The response body, or what went wrong on the way (a string). A refused
        connect (the server is down) is tried again until it is up, since nothing was
        sent; only a server down for HANG_GUARD_SECONDS makes the call REFUSED."""
        assert self.http is not None
        give_up = math.inf
        headers = {"Idempotency-Key": key} if key is not None else {}
        while True:
            try:
                response = await self.http.post(
                    "/graphql", json={"query": query, "variables": variables}, headers=headers
                )
            except httpx.ConnectError:
                self.report.refused_attempts += 1
                give_up = min(give_up, time.monotonic() + HANG_GUARD_SECONDS)
                if time.monotonic() > give_up:
                    return "refused"
                await asyncio.sleep(0.1)
                continue
            except httpx.TimeoutException as error:
                return f"timeout:{type(error).__name__}"
            except httpx.TransportError as error:
                return f"transport:{type(error).__name__}"
            if response.status_code != 200:
                return f"http:{response.status_code}"
            self.report.replays += response.headers.get("Idempotent-Replayed") == "true"
            try:
                body: dict[str, Any] = response.json()
            except ValueError:
                return "http:not-json"
            return body

    async def mutate(
        self,
        op: Op,
        query: str,
        variables: dict[str, Any],
        on_ok: Callable[[dict[str, Any]], None],
    ) -> dict[str, Any] | None:
        """Send one mutation, record it in the history; the payload when it succeeded."""
        self.report.history.append(op)
        op.start = time.monotonic()
        body = await self._post(query, variables, op.key)
        while (lost := self._lost(op, body)) is not None:
            self.report.resent[lost] += 1
            await asyncio.sleep(min(1.0, 0.05 * 2**op.attempts))
            op.attempts += 1
            body = await self._post(query, variables, op.key)
        end = time.monotonic()
        if isinstance(body, str):
            op.code = body
            if body == "refused":
                op.outcome, op.end = Outcome.REFUSED, end
            elif not body.startswith("timeout"):
                op.end = end  # the server answered or died: it is not working on it any more
                if body.startswith("http"):
                    self.report.unexpected.append(f"{op}: {body}")
            return None
        op.end = end
        if body.get("errors"):
            codes = {(e.get("extensions") or {}).get("code") for e in body["errors"]}
            if codes != {"UNAVAILABLE"}:
                op.code = "masked"
                self.report.unexpected.append(f"{op}: {body['errors']}")
                return None
            # Below the mutation's own field: the mutation answered, and reading a
            # nested object of its payload afterwards met the lost connection.
            nested = all(len(e.get("path") or ()) > 1 for e in body["errors"])
            op.code = READING_THE_PAYLOAD if nested else "UNAVAILABLE (GraphQL error)"
            return None
        payload: dict[str, Any] = body["data"][op.name]
        stopping = [
            error
            for error in payload["errors"]
            if error["code"] not in NOT_STOPPING or op.name != "allocateOrder"
        ]
        if stopping:
            error = stopping[0]
            op.code = error["code"]
            op.outcome = Outcome.UNKNOWN if op.code == "UNAVAILABLE" else Outcome.REJECTED
            if op.code == "VERSION_CONFLICT":
                op.result["current_version"] = error["currentVersion"]
            return None
        if payload["errors"] and not payload.get("salesOrder"):
            # SERIALIZED_ITEM comes with the order the other lines were allocated on.
            op.code = "SERIALIZED_ITEM without the order"
            self.report.unexpected.append(f"{op}: {payload}")
            return None
        op.outcome = Outcome.OK
        self.world.learn(payload.get("salesOrder"))
        on_ok(payload)
        return payload

    def _lost(self, op: Op, body: dict[str, Any] | str) -> str | None:
        """Why a keyed call's answer is to be asked for again, if it is: a cut
        connection, 409 (the first with its key still running), 503 or UNAVAILABLE. Not
        a timeout or a server down for good: the hang guard gives up on those."""
        if op.key is None or time.monotonic() - op.start > HANG_GUARD_SECONDS:
            return None
        if isinstance(body, str):
            if body.startswith("transport"):
                return "connection cut"
            return {"http:409": "409", "http:503": "503"}.get(body)
        codes = {(e.get("extensions") or {}).get("code") for e in body.get("errors") or ()}
        if codes == {"UNAVAILABLE"}:
            return "UNAVAILABLE (GraphQL error)"
        payload = (body.get("data") or {}).get(op.name) or {}
        if any(error["code"] == "UNAVAILABLE" for error in payload.get("errors") or ()):
            return "UNAVAILABLE"
        return None

    async def query(self, order_id: int) -> None:
        body = await self._post(READ_ORDER, {"id": to_global_id("SalesOrder", order_id)})
        if isinstance(body, str):
            self.report.queries[body.partition(":")[0]] += 1
            if body.startswith("http"):
                self.report.unexpected.append(f"query: {body}")
            return
        if not body.get("errors"):
            self.report.queries["OK"] += 1
            return
        codes = {(e.get("extensions") or {}).get("code") for e in body["errors"]}
        if codes == {"UNAVAILABLE"}:
            self.report.queries["UNAVAILABLE"] += 1
        else:
            self.report.queries["masked"] += 1
            self.report.unexpected.append(f"query: {body['errors']}")

    # -- the operations ----------------------------------------------------------------------

    def new_op(self, client: int, name: str, order_id: int | None, **args: Any) -> Op:
        seq = len(self.report.history) + 1
        op = Op(seq, client, name, f"op-{seq}", order_id, args)
        if self.config.keyed and client > 0 and client % 2 == 0:
            op.key = op.tag
        return op

    def version(self, rng: random.Random, op: Op) -> int | None:
        """The order's version as last seen, for a share of the calls."""
        order = self.world.orders.get(op.order_id or 0)
        if order is None or rng.random() >= self.config.guarded_share:
            return None
        op.guarded = True
        op.args["expected_version"] = order.version
        return order.version

    async def create_order(self, rng: random.Random, client: int) -> None:
        skus = rng.sample(self.skus, rng.randint(1, min(3, len(self.skus))))
        if rng.random() < 0.25:
            skus.insert(rng.randint(0, len(skus)), SERIAL)
        lines = [(sku, rng.randint(1, 8)) for sku in skus]
        op = self.new_op(client, "createSalesOrder", None, lines=lines)
        op.args["customer"] = op.tag

        def ok(payload: dict[str, Any]) -> None:
            order = payload["salesOrder"]
            op.order_id = pk(order["id"])
            op.result["lines"] = {pk(line["id"]): line["quantity"] for line in order["lines"]}

        variables = {
            "input": {
                "customer": op.tag,
                "lines": [{"sku": sku, "quantity": q} for sku, q in lines],
            }
        }
        await self.mutate(op, CREATE_ORDER, variables, ok)

    async def add_line(self, rng: random.Random, client: int, order: KnownOrder) -> None:
        # The answer does not say which line is the new one; the checker counts them.
        sku = SERIAL if rng.random() < 0.2 else rng.choice(self.skus)
        op = self.new_op(client, "addSalesOrderLine", order.id, sku=sku)
        op.args["quantity"] = rng.randint(1, 8)
        variables = {
            "order": to_global_id("SalesOrder", order.id),
            "sku": sku,
            "q": op.args["quantity"],
            "v": self.version(rng, op),
        }
        await self.mutate(op, ADD_LINE, variables, lambda _: None)

    async def delete_line(self, rng: random.Random, client: int, order: KnownOrder) -> None:
        # Lines with allocation lines are refused (LINE_HAS_ALLOCATIONS): often, on purpose.
        line_id = rng.choice(sorted(order.lines))
        op = self.new_op(client, "deleteSalesOrderLine", order.id, line_id=line_id)
        variables = {"id": to_global_id("SalesOrderLine", line_id), "v": self.version(rng, op)}
        await self.mutate(op, DELETE_LINE, variables, lambda _: None)

    async def update_line(self, rng: random.Random, client: int, order: KnownOrder) -> None:
        line_id = rng.choice(sorted(order.lines))
        quantity = rng.randint(1, 12)
        op = self.new_op(client, "updateSalesOrderLine", order.id, line_id=line_id)
        op.args["quantity"] = quantity
        variables = {
            "id": to_global_id("SalesOrderLine", line_id),
            "q": quantity,
            "v": self.version(rng, op),
        }
        await self.mutate(op, UPDATE_LINE, variables, lambda _: None)

    async def allocate(
        self, rng: random.Random, client: int, order: KnownOrder, guard: bool = True
    ) -> None:
        strategy = rng.choice(STRATEGIES)
        op = self.new_op(client, "allocateOrder", order.id, strategy=strategy)

        def ok(payload: dict[str, Any]) -> None:
            op.result["allocations"] = _made(payload["allocations"])
            self.world.reported.update(op.result["allocations"])
            # SERIALIZED_ITEM names the line by its place in the payload's order.
            lines = payload["salesOrder"]["lines"]
            op.result["skipped"] = [
                pk(lines[int(error["field"][1])]["id"]) for error in payload["errors"]
            ]

        version = self.version(rng, op) if guard else None
        variables = {
            "id": to_global_id("SalesOrder", order.id),
            "v": version,
            "strategy": strategy,
        }
        await self.mutate(op, ALLOCATE, variables, ok)

    async def pack(self, rng: random.Random, client: int, order: KnownOrder) -> None:
        op = self.new_op(client, "packAllocatedOrder", order.id)

        def ok(payload: dict[str, Any]) -> None:
            op.result["packed"] = {pk(p["id"]): p["quantity"] for p in payload["packedLines"]}

        variables = {"id": to_global_id("SalesOrder", order.id), "v": self.version(rng, op)}
        await self.mutate(op, PACK, variables, ok)

    async def remove(self, rng: random.Random, client: int, order: KnownOrder) -> None:
        # Mostly unpacked lines; packed and stale ones now and then give errors.
        candidates = sorted(a for a in order.allocations if a in self.world.reported)
        if not candidates:
            await self.allocate(rng, client, order)
            return
        unpacked = [a for a in candidates if not order.allocations[a]]
        pool = unpacked if unpacked and rng.random() < 0.9 else candidates
        ids = rng.sample(pool, rng.randint(1, min(3, len(pool))))
        op = self.new_op(client, "removeAllocationLines", order.id, ids=ids)

        def ok(payload: dict[str, Any]) -> None:
            op.result["removed"] = [pk(i) for i in payload["removedIds"]]

        variables = {
            "ids": [to_global_id("Allocation", i) for i in ids],
            "v": self.version(rng, op),
        }
        await self.mutate(op, REMOVE, variables, ok)

    async def cancel_or_delete(
        self, rng: random.Random, client: int, order: KnownOrder, cancel: bool
    ) -> None:
        open_ = [b for b, status in order.backorders.items() if status == "OPEN"]
        pool = open_ if open_ and rng.random() < 0.9 else sorted(order.backorders)
        backorder_id = rng.choice(sorted(pool))
        name = "cancelBackorder" if cancel else "deleteBackorder"
        op = self.new_op(client, name, order.id, backorder_id=backorder_id)
        variables: dict[str, Any] = {
            "id": to_global_id("Backorder", backorder_id),
            "v": self.version(rng, op),
        }
        if cancel:
            variables["reason"] = op.tag
        await self.mutate(op, CANCEL if cancel else DELETE, variables, lambda _: None)

    async def adjust(
        self,
        client: int,
        sku: str,
        lot: str,
        location: str,
        quantity: int,
    ) -> None:
        op = self.new_op(
            client, "adjustInventory", None, sku=sku, lot=lot, location=location, quantity=quantity
        )
        received, expires = LOT_DATES[lot]

        def ok(payload: dict[str, Any]) -> None:
            op.result["adjustment_id"] = pk(payload["adjustment"]["id"])
            op.result["balance_id"] = pk(payload["balance"]["id"])

        variables = {
            "input": {
                "sku": sku,
                "lotNumber": lot,
                "locationCode": location,
                "quantity": quantity,
                "reason": op.tag,
                "receivedAt": received,
                "expiresAt": expires,
            }
        }
        await self.mutate(op, ADJUST, variables, ok)

    async def fill(self, rng: random.Random, client: int) -> None:
        """Backorders of one item filled in their declared order, half the time right after a
        receipt of it; now and then of the serialized item, which has none to fill."""
        sku = SERIAL if rng.random() < 0.1 else rng.choice(self.skus)
        if sku != SERIAL and rng.random() < 0.5:  # as a warehouse does: receive, then fill
            await self.adjust(
                client, sku, rng.choice(LOTS), rng.choice(LOCATIONS), rng.randint(1, 6)
            )
        limit = rng.choice(FILL_LIMITS)
        op = self.new_op(client, "fillBackorders", None, sku=sku, limit=limit)

        def ok(payload: dict[str, Any]) -> None:
            made = payload["allocations"]
            op.result["allocations"] = _made(made)
            op.result["orders"] = {pk(a["id"]): pk(a["salesOrder"]["id"]) for a in made}
            self.world.reported.update(op.result["allocations"])
            for backorder in payload["backorders"]:
                self.world.learn(backorder["salesOrder"])

        await self.mutate(op, FILL, {"sku": sku, "limit": limit}, ok)

    async def random_adjust(self, rng: random.Random, client: int) -> None:
        # Receipts a little short of the demand, so that backorders keep coming.
        quantity = rng.randint(1, 10) if rng.random() < 0.75 else -rng.randint(1, 4)
        sku = SERIAL if rng.random() < 0.1 else rng.choice(self.skus)
        await self.adjust(client, sku, rng.choice(LOTS), rng.choice(LOCATIONS), quantity)

    async def one(self, rng: random.Random, client: int) -> None:
        """One random operation; falls back to creating or allocating where the chosen one
        has nothing to work on."""
        if not self.world.orders:
            await self.create_order(rng, client)
            return
        if rng.random() < self.config.query_share:
            await self.query(self.world.pick(rng).id)
            return
        kind = rng.choices(
            [
                "create", "add line", "update", "delete line", "allocate", "pack", "remove",
                "cancel", "delete", "adjust", "fill",
            ],
            weights=[9, 6, 10, 8, 22, 11, 11, 8, 8, 13, 10],
        )[0]  # fmt: skip
        if kind in ORDERLESS:
            await ORDERLESS[kind](self, rng, client)
            return
        if kind == "delete line" and rng.random() < 0.5:
            kind = "delete free line"
        order = self.world.pick(rng, FITS.get(kind, lambda _: True))
        if kind == "add line":
            await self.add_line(rng, client, order)
        elif kind == "update" and order.lines:
            await self.update_line(rng, client, order)
        elif kind in ("delete line", "delete free line") and order.lines:
            await self.delete_line(rng, client, order)
        elif kind == "pack" and order.allocations:
            await self.pack(rng, client, order)
        elif kind == "remove" and order.allocations:
            await self.remove(rng, client, order)
        elif kind in ("cancel", "delete") and order.backorders:
            await self.cancel_or_delete(rng, client, order, cancel=kind == "cancel")
        else:
            await self.allocate(rng, client, order)

    # -- set-up, clients, faults -------------------------------------------------------------

    async def setup(self) -> None:
        """Items, locations and first stock; a few orders. Through the API, in the history."""
        assert self.http is not None
        for sku in self.skus:
            await self._setup_call(CREATE_ITEM, "createItem", {"sku": sku, "name": sku})
        await self._setup_call(
            CREATE_ITEM, "createItem", {"sku": SERIAL, "name": SERIAL, "serialized": True}
        )
        for code, sequence in PICK_SEQUENCE.items():
            await self._setup_call(
                CREATE_LOCATION,
                "createLocation",
                {"code": code, "name": code, "pickSequence": sequence},
            )
        # FEFO takes L2 (it expires) at BIN-2 first, FIFO L1 (received first) at BIN-1,
        # LOCATION L3 at BIN-3 (picked first). The serialized item has stock too, which
        # allocateOrder must leave alone.
        for sku in [*self.skus, SERIAL]:
            for lot, location, quantity in (("L1", "BIN-1", 6), ("L2", "BIN-2", 6)):
                await self.adjust(0, sku, lot, location, quantity)
            await self.adjust(0, sku, "L3", "BIN-3", 3)
        rng = random.Random(f"{self.config.seed}-setup")
        for _ in range(8):
            await self.create_order(rng, 0)
        failed = [op for op in self.report.history if op.outcome is not Outcome.OK]
        assert not failed, failed

    async def _setup_call(self, query: str, name: str, variables: dict[str, Any]) -> None:
        body = await self._post(query, {"input": variables})
        assert isinstance(body, dict), body
        assert body.get("data"), body
        assert not body["data"][name]["errors"], body

    async def client(self, index: int) -> None:
        rng = random.Random(f"{self.config.seed}-{index}")
        for _ in range(self.config.calls_per_client):
            before = len(self.report.history)
            self.in_flight += 1
            await self.one(rng, index)
            self.in_flight -= 1
            self.report.calls += 1
            async with self.progress:
                self.progress.notify_all()
            last = self.report.history[-1] if len(self.report.history) > before else None
            if last is not None and last.outcome in (Outcome.UNKNOWN, Outcome.REFUSED):
                await asyncio.sleep(rng.uniform(0.05, 0.2))  # as the README advises

    async def _calls_made(self, count: int) -> None:
        async with self.progress:
            await self.progress.wait_for(lambda: self.report.calls >= count)

    async def faults(self) -> None:
        """Each fault once, in turn, when the clients have made its number of calls
        (Config makes sure that each falls within the run)."""
        for fault in sorted(self.config.faults, key=lambda f: f.after_calls):
            await self._calls_made(fault.after_calls)
            calls, start = self.report.calls, time.monotonic()
            detail = await fault.action()
            self.report.faults.append(
                FaultEvent(fault.name, calls, start - self.t0, time.monotonic() - self.t0, detail)
            )

    async def watch(self, observer: Observer) -> None:
        """The observer's turn every `snapshot_every` calls, one at a time, while the
        clients go on: one turn for each threshold, taken at once if it fell behind."""
        every = self.config.snapshot_every
        for threshold in range(every, self.config.calls, every):
            await self._calls_made(threshold)
            await observer(self.report.history, self.report.calls, self.in_flight)

    async def run(self) -> LoadReport:
        limits = httpx.Limits(
            max_connections=self.config.clients + 8,
            max_keepalive_connections=self.config.clients + 8,
        )
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=self.config.request_timeout, limits=limits
        ) as http:
            self.http = http
            await self.setup()
            self.t0 = time.monotonic()
            # A task that fails takes the others down with it, and the run fails loudly.
            async with asyncio.TaskGroup() as tasks:
                for index in range(1, self.config.clients + 1):
                    tasks.create_task(self.client(index))
                tasks.create_task(self.faults())
                if self.observer is not None and self.config.snapshot_every:
                    tasks.create_task(self.watch(self.observer))
            self.report.seconds = time.monotonic() - self.t0
            await self.settle()
        self._recoveries()
        return self.report

    async def settle(self) -> None:
        """Once the clients have stopped, allocate the newest orders once more, each by one
        client (they race only for stock): the checker then sees lines right after their
        order's last allocation, whatever the random mix left behind."""
        rng = random.Random(f"{self.config.seed}-settle")
        newest = [self.world.orders[i] for i in self.world.order_ids[-self.config.settle :]]
        await asyncio.gather(*(self.allocate(rng, 0, order, guard=False) for order in newest))

    def _recoveries(self) -> None:
        for event in self.report.faults:
            after = [
                op.end - self.t0 - event.end
                for op in self.report.history
                if op.outcome is Outcome.OK and op.start - self.t0 >= event.end
            ]
            event.recovered_after = min(after) if after else None


# The operations that concern no one order.
ORDERLESS: dict[str, Callable[[Load, random.Random, int], Awaitable[None]]] = {
    "create": Load.create_order,
    "adjust": Load.random_adjust,
    "fill": Load.fill,
}


async def run_load(base_url: str, config: Config, observer: Observer | None = None) -> LoadReport:
    return await Load(base_url, config, observer).run()
