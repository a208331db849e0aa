"""The checker: reads the whole database and judges it against SPEC sections 4 and 5 and,
when given one, against the history the clients kept (tests/load/workload.py).

Like Jepsen's bank test it knows nothing of how the server works: it sees rows and what
the clients were told. `check` returns the violations (none is good), each naming the
clause it breaks, and counts of what it could check. `Watcher` runs it on snapshots
taken while a load runs, and compares each snapshot with the one before.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tests.load.workload import Op, Outcome


class Clause(StrEnum):
    """Every rule the checker judges by; each violation names the one it breaks."""

    # What holds at every commit (SPEC section 4).
    BALANCE_OUT_OF_RANGE = "0 <= allocated <= onHand"
    BALANCE_ALLOCATED_UNRESERVED = "allocated = the unpacked quantity of its allocation lines"
    BALANCE_ON_HAND_UNEXPLAINED = "onHand = its adjustments less what was packed from it"
    ALLOCATION_OFF_ITS_ORDER = "an allocation line is on a line of its own order"
    ALLOCATION_WRONG_ITEM = "an allocation line draws on a balance of its line's item"
    ALLOCATION_SERIALIZED = "no allocation line is on a line of a serialized item"
    ALLOCATION_PACKED_IN_PART = "an allocation line is packed whole or not at all"
    ALLOCATION_PACKED_UNRECORDED = "quantityPacked = what packed lines took from the line"
    PACKED_LINE_QUANTITY = "a packed line's quantity = what it took from allocation lines"
    PACKED_LINE_OTHER_LINE = "a packed line packs allocation lines of its own line"
    BACKORDER_OFF_ITS_ORDER = "a backorder is on a line of its own order"
    BACKORDER_SERIALIZED = "no backorder is on a line of a serialized item"
    BACKORDER_OVER_ALLOCATED = "0 <= a backorder's quantityAllocated <= its quantity"
    BACKORDER_ALLOCATED_SHORT = "an ALLOCATED backorder has nothing remaining"
    LINE_TWO_OPEN_BACKORDERS = "a line has at most one OPEN backorder"
    LINE_OVERCOMMITTED = "quantity >= allocated + backordered + cancelled"
    ORDER_STATUS = "an order's stored status is the one its quantities give"
    LEDGER_UNBALANCED = "a balance's onHand and allocated are the sums of its movements"

    # From one snapshot to a later one (SPEC section 5: every change raises the version).
    BALANCE_GONE = "a balance, once there, stays"
    BALANCE_VERSION_FELL = "a balance's version never falls"
    BALANCE_CHANGED_UNVERSIONED = "a balance whose onHand or allocated changed has a higher version"
    ORDER_GONE = "an order, once there, stays"
    ORDER_VERSION_FELL = "an order's version never falls"
    ORDER_CHANGED_UNVERSIONED = "an order whose rows changed has a higher version"

    # What the clients were told.
    ORDER_LOST = "an order a client saw created is there"
    ORDER_NO_CREATOR = "every order was made by a createSalesOrder that may have succeeded"
    LINE_LOST = "a line a client knew is gone only by a deletion that may have succeeded"
    LINE_NO_MAKER = "every line was created with its order or by an add that may have succeeded"
    ADDED_LINE_LOST = "a line a client saw added is there, unless deleted since"
    LINE_DELETE_LOST = "a line a client saw deleted is gone"
    LINE_QUANTITY_NEVER_ASKED = "a line's quantity is one a client asked for"
    LINE_UPDATE_LOST = "a line's quantity is the last one a client saw set"
    ALLOCATION_LOST = "an allocation line a client saw made is there, unless removed"
    ALLOCATION_ALTERED = "an allocation line is as allocateOrder answered"
    ALLOCATION_NO_MAKER = "every allocation line was made by a call that may have succeeded"
    ALLOCATION_UNREPORTED = "an allocation line a client named was in the answer that made it"
    SERIALIZED_NOT_REPORTED = "allocateOrder reports every serialized line as SERIALIZED_ITEM"
    SKIPPED_NOT_SERIALIZED = "allocateOrder reports SERIALIZED_ITEM only for serialized lines"
    REMOVAL_LOST = "allocation lines a client saw removed are gone"
    REMOVAL_MISREPORTED = "removedIds are the allocation lines asked for"
    REFUSED_REMOVAL_TOOK_LINES = "a refused removal took no allocation line"
    PACK_LOST = "a packed line a client saw made is there, as answered"
    PACKED_LINE_NO_MAKER = "every packed line was made by a call that may have succeeded"
    ADJUSTMENT_LOST = "an adjustment a client saw made is there, as sent"
    ADJUSTMENT_NO_MAKER = "every adjustment was made by a call that may have succeeded"
    ADJUSTMENT_ALTERED = "an adjustment's quantity is the one its call sent"
    CANCEL_LOST = "a backorder a client saw cancelled is CANCELLED with its reason"
    CANCELLED_BY_NO_ONE = (
        "every CANCELLED backorder was cancelled by a call that may have succeeded"
    )
    BACKORDER_DELETE_LOST = "a backorder a client saw deleted is gone"
    ORDER_VERSION_COUNT = "every change adds 1 to the order's version; a refused call adds none"
    BALANCE_VERSION_COUNT = "every change adds 1 to the balance's version"
    LINE_UNBALANCED_AFTER_ALLOCATION = (
        "right after allocation, quantity = allocated + backordered + cancelled"
    )
    APPLIED_TWICE = "a call is applied once at most, however often its client sent it"


@dataclass(frozen=True)
class Violation:
    clause: Clause
    subject: str  # "balance 3", "line 12", "#41 allocateOrder(...) -> OK"
    detail: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.detail} [{self.clause.name}]"


# -- the rows ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    id: int
    sku: str
    serialized: bool


@dataclass(frozen=True)
class Balance:
    id: int
    item_id: int
    lot_id: int
    location_id: int
    on_hand: int
    allocated: int
    version: int


@dataclass(frozen=True)
class Adjustment:
    id: int
    balance_id: int
    quantity: int
    reason: str


@dataclass(frozen=True)
class Order:
    id: int
    number: str
    customer: str
    status: str
    version: int


@dataclass(frozen=True)
class Line:
    id: int
    order_id: int
    line_number: int
    item_id: int
    serialized: bool
    quantity: int
    quantity_cancelled: int


@dataclass(frozen=True)
class Allocation:
    id: int
    order_id: int
    line_id: int
    balance_id: int
    quantity: int
    quantity_packed: int


@dataclass(frozen=True)
class Backorder:
    id: int
    order_id: int
    line_id: int
    quantity: int
    quantity_allocated: int
    status: str
    cancel_reason: str | None

    @property
    def remaining(self) -> int:
        return self.quantity - self.quantity_allocated


@dataclass(frozen=True)
class PackedLine:
    id: int
    order_id: int
    line_id: int
    quantity: int


@dataclass(frozen=True)
class PackedPart:
    packed_line_id: int
    allocation_id: int
    quantity: int


@dataclass
class Snapshot:
    """Every row that SPEC section 4 speaks of, as of one instant."""

    items: dict[int, Item]
    balances: dict[int, Balance]
    adjustments: dict[int, Adjustment]
    orders: dict[int, Order]
    lines: dict[int, Line]
    allocations: dict[int, Allocation]
    backorders: dict[int, Backorder]
    packed: dict[int, PackedLine]
    parts: list[PackedPart]
    # balance id -> (onHand, allocated) its movements add up to; None: not read (the
    # snapshots tests make by hand), which tests/load/test_invariants.py rules out.
    ledger: dict[int, tuple[int, int]] | None = None

    def lines_of(self, order_id: int) -> list[Line]:
        return self._lines_by_order.get(order_id, [])

    def rows_of(self, order_id: int) -> tuple[object, ...]:
        """Everything of the order that a change would touch, to compare snapshots."""
        order = self.orders[order_id]
        return (
            order.status,
            self.lines_of(order_id),
            sorted(self.allocations_by_order.get(order_id, []), key=lambda a: a.id),
            sorted(self._backorders_by_order.get(order_id, []), key=lambda b: b.id),
            sorted(self._packed_by_order.get(order_id, []), key=lambda p: p.id),
        )

    # Indexes, made on first use.

    @cached_property
    def _lines_by_order(self) -> dict[int, list[Line]]:
        return _group(
            sorted(self.lines.values(), key=lambda line: line.line_number),
            lambda line: line.order_id,
        )

    @cached_property
    def _backorders_by_order(self) -> dict[int, list[Backorder]]:
        return _group(self.backorders.values(), lambda bo: bo.order_id)

    @cached_property
    def _packed_by_order(self) -> dict[int, list[PackedLine]]:
        return _group(self.packed.values(), lambda p: p.order_id)

    @cached_property
    def item_ids(self) -> dict[str, int]:
        return {item.sku: item.id for item in self.items.values()}

    @cached_property
    def allocations_by_balance(self) -> dict[int, list[Allocation]]:
        return _group(self.allocations.values(), lambda a: a.balance_id)

    @cached_property
    def allocations_by_line(self) -> dict[int, list[Allocation]]:
        return _group(self.allocations.values(), lambda a: a.line_id)

    @cached_property
    def allocations_by_order(self) -> dict[int, list[Allocation]]:
        return _group(self.allocations.values(), lambda a: a.order_id)

    @cached_property
    def open_backorders_by_line(self) -> dict[int, list[Backorder]]:
        opened = [bo for bo in self.backorders.values() if bo.status == "OPEN"]
        return _group(opened, lambda bo: bo.line_id)

    @cached_property
    def parts_by_allocation(self) -> dict[int, list[PackedPart]]:
        return _group(self.parts, lambda part: part.allocation_id)

    @cached_property
    def parts_by_packed_line(self) -> dict[int, list[PackedPart]]:
        return _group(self.parts, lambda part: part.packed_line_id)


K = TypeVar("K")
V = TypeVar("V")


def _group(values: Iterable[V], key: Callable[[V], K]) -> dict[K, list[V]]:
    groups: dict[K, list[V]] = defaultdict(list)
    for value in values:
        groups[key(value)].append(value)
    return groups


_QUERIES = {
    "items": "SELECT id, sku, serialized FROM items",
    "balances": "SELECT id, item_id, lot_id, location_id, on_hand, allocated, version "
    "FROM inventory_balances",
    "adjustments": "SELECT id, balance_id, quantity, reason FROM inventory_adjustments",
    "orders": "SELECT id, number, customer, status, version FROM sales_orders",
    "lines": "SELECT l.id, l.order_id, l.line_number, l.item_id, i.serialized, l.quantity, "
    "l.quantity_cancelled FROM sales_order_lines l JOIN items i ON i.id = l.item_id",
    "allocations": "SELECT id, order_id, line_id, balance_id, quantity, quantity_packed "
    "FROM allocations",
    "backorders": "SELECT id, order_id, line_id, quantity, quantity_allocated, status, "
    "cancel_reason FROM backorders",
    "packed": "SELECT id, order_id, line_id, quantity FROM packed_lines",
}


@dataclass(frozen=True)
class Taken:
    """A snapshot and when it was taken: PostgreSQL fixed it between `began` and `fixed`
    (time.monotonic(), the clock of the history)."""

    snapshot: Snapshot
    began: float  # before the transaction began
    fixed: float  # after its first statement, which fixes a REPEATABLE READ snapshot


async def read_snapshot(engine: AsyncEngine) -> Snapshot:
    return (await take_snapshot(engine)).snapshot


async def take_snapshot(engine: AsyncEngine) -> Taken:
    """All of it in one REPEATABLE READ transaction, so the rows agree with each other."""
    began = time.monotonic()
    async with engine.connect() as base:
        conn = await base.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            items = await _rows(conn, "items", Item)
            fixed = time.monotonic()
            return Taken(await _read(conn, items), began, fixed)


T = TypeVar("T")


async def _rows(conn: AsyncConnection, name: str, kind: Callable[..., T]) -> dict[int, T]:
    rows = await conn.execute(text(_QUERIES[name] + " ORDER BY id"))
    return {row[0]: kind(*row) for row in rows}


async def _read(conn: AsyncConnection, items: dict[int, Item]) -> Snapshot:
    parts = await conn.execute(
        text("SELECT packed_line_id, allocation_id, quantity FROM packed_line_allocations")
    )
    ledger = await conn.execute(
        text(
            "SELECT balance_id, sum(on_hand_delta), sum(allocated_delta) FROM movements "
            "GROUP BY balance_id"
        )
    )
    return Snapshot(
        items=items,
        balances=await _rows(conn, "balances", Balance),
        adjustments=await _rows(conn, "adjustments", Adjustment),
        orders=await _rows(conn, "orders", Order),
        lines=await _rows(conn, "lines", Line),
        allocations=await _rows(conn, "allocations", Allocation),
        backorders=await _rows(conn, "backorders", Backorder),
        packed=await _rows(conn, "packed", PackedLine),
        parts=[PackedPart(*row) for row in parts],
        ledger={balance: (int(on_hand), int(allocated)) for balance, on_hand, allocated in ledger},
    )


@dataclass
class Check:
    violations: list[Violation] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def fail(self, clause: Clause, subject: object, detail: str) -> None:
        self.violations.append(Violation(clause, str(subject), detail))

    @property
    def clauses(self) -> list[Clause]:
        return [v.clause for v in self.violations]


def check(
    snapshot: Snapshot, history: Sequence[Op] = (), previous: Snapshot | None = None
) -> Check:
    """The invariants; with a history, what the clients were told; with an earlier
    snapshot, what may change between the two."""
    result = Check()
    _invariants(snapshot, result)
    if previous is not None:
        _since(previous, snapshot, result)
    if history:
        _history(snapshot, _History(list(history)), result)
    return result


def compare(before: Snapshot, after: Snapshot) -> Check:
    """What may change from one snapshot to a later one, alone."""
    result = Check()
    _since(before, after, result)
    return result


def derived_status(snapshot: Snapshot, order_id: int) -> str:
    """README: PACKED when everything wanted (quantity - cancelled, serialized lines left
    out) is packed, PARTIALLY_PACKED when something is, then ALLOCATED and
    PARTIALLY_ALLOCATED likewise, else OPEN."""
    lines = snapshot.lines_of(order_id)
    wanted = sum(line.quantity - line.quantity_cancelled for line in lines if not line.serialized)
    allocations = snapshot.allocations_by_order.get(order_id, [])
    allocated = sum(a.quantity for a in allocations)
    packed = sum(a.quantity_packed for a in allocations)
    if packed > 0:
        return "PACKED" if packed >= wanted else "PARTIALLY_PACKED"
    if allocated > 0:
        return "ALLOCATED" if allocated >= wanted else "PARTIALLY_ALLOCATED"
    return "OPEN"


def line_balanced(s: Snapshot, line: Line) -> bool:
    """quantity = allocated + open backorder remaining + cancelled: right after allocation."""
    allocated = sum(a.quantity for a in s.allocations_by_line.get(line.id, []))
    remaining = sum(bo.remaining for bo in s.open_backorders_by_line.get(line.id, []))
    return line.quantity == allocated + remaining + line.quantity_cancelled


# -- what must hold at every commit ----------------------------------------------------------
#
# Each clause is one `if` of its own (no elif chains), so that switching one off leaves
# the others as they were: tests/load/test_checker.py proves each by a breach of it alone.


def _invariants(s: Snapshot, result: Check) -> None:
    _balances(s, result)
    _ledger(s, result)
    _allocation_lines(s, result)
    _packed_lines(s, result)
    _backorders(s, result)
    _lines(s, result)
    for order in s.orders.values():
        result.counts["orders"] += 1
        status = derived_status(s, order.id)
        if order.status != status:
            result.fail(
                Clause.ORDER_STATUS,
                f"order {order.id}",
                f"status {order.status}, its quantities give {status}",
            )


def _balances(s: Snapshot, result: Check) -> None:
    adjusted: Counter[int] = Counter()
    for adjustment in s.adjustments.values():
        adjusted[adjustment.balance_id] += adjustment.quantity
    for b in s.balances.values():
        result.counts["balances"] += 1
        allocations = s.allocations_by_balance.get(b.id, [])
        if not 0 <= b.allocated <= b.on_hand:
            result.fail(
                Clause.BALANCE_OUT_OF_RANGE,
                f"balance {b.id}",
                f"allocated {b.allocated}, on hand {b.on_hand}",
            )
        unpacked = sum(a.quantity - a.quantity_packed for a in allocations)
        if b.allocated != unpacked:
            result.fail(
                Clause.BALANCE_ALLOCATED_UNRESERVED,
                f"balance {b.id}",
                f"allocated {b.allocated}, unpacked on its allocation lines {unpacked}",
            )
        shipped = sum(
            part.quantity for a in allocations for part in s.parts_by_allocation.get(a.id, [])
        )
        if b.on_hand != adjusted[b.id] - shipped:
            result.fail(
                Clause.BALANCE_ON_HAND_UNEXPLAINED,
                f"balance {b.id}",
                f"on hand {b.on_hand}, adjustments {adjusted[b.id]} less packed {shipped}",
            )


def _ledger(s: Snapshot, result: Check) -> None:
    if s.ledger is None:
        return
    for b in s.balances.values():
        result.counts["balances checked against their movements"] += 1
        moved = s.ledger.get(b.id, (0, 0))
        if (b.on_hand, b.allocated) != moved:
            result.fail(
                Clause.LEDGER_UNBALANCED,
                f"balance {b.id}",
                f"on hand {b.on_hand}, allocated {b.allocated}; its movements give {moved}",
            )


def _allocation_lines(s: Snapshot, result: Check) -> None:
    for a in s.allocations.values():
        result.counts["allocation lines"] += 1
        subject = f"allocation line {a.id}"
        line = s.lines.get(a.line_id)
        balance = s.balances.get(a.balance_id)
        if line is None or line.order_id != a.order_id:
            result.fail(
                Clause.ALLOCATION_OFF_ITS_ORDER,
                subject,
                f"on line {a.line_id}, which is not a line of its order {a.order_id}",
            )
        if line is not None and (balance is None or balance.item_id != line.item_id):
            result.fail(
                Clause.ALLOCATION_WRONG_ITEM,
                subject,
                f"draws on balance {a.balance_id}, not one of item {line.item_id}",
            )
        if line is not None and line.serialized:
            result.fail(
                Clause.ALLOCATION_SERIALIZED, subject, f"on line {line.id} of a serialized item"
            )
        if a.quantity_packed not in (0, a.quantity):
            result.fail(
                Clause.ALLOCATION_PACKED_IN_PART,
                subject,
                f"{a.quantity_packed} of {a.quantity} packed",
            )
        packed = sum(part.quantity for part in s.parts_by_allocation.get(a.id, []))
        if packed != a.quantity_packed:
            result.fail(
                Clause.ALLOCATION_PACKED_UNRECORDED,
                subject,
                f"quantity packed {a.quantity_packed}, packed lines took {packed}",
            )


def _packed_lines(s: Snapshot, result: Check) -> None:
    for p in s.packed.values():
        result.counts["packed lines"] += 1
        parts = s.parts_by_packed_line.get(p.id, [])
        taken = sum(part.quantity for part in parts)
        if not parts or p.quantity != taken:
            result.fail(
                Clause.PACKED_LINE_QUANTITY,
                f"packed line {p.id}",
                f"quantity {p.quantity}, taken from allocation lines {taken}",
            )
        others = [
            part.allocation_id
            for part in parts
            if (a := s.allocations.get(part.allocation_id)) is None or a.line_id != p.line_id
        ]
        if others:
            result.fail(
                Clause.PACKED_LINE_OTHER_LINE,
                f"packed line {p.id}",
                f"packs allocation lines {others}, which are not of its line {p.line_id}",
            )


def _backorders(s: Snapshot, result: Check) -> None:
    for bo in s.backorders.values():
        result.counts["backorders"] += 1
        subject = f"backorder {bo.id}"
        line = s.lines.get(bo.line_id)
        if line is None or line.order_id != bo.order_id:
            result.fail(
                Clause.BACKORDER_OFF_ITS_ORDER,
                subject,
                f"on line {bo.line_id}, which is not a line of its order {bo.order_id}",
            )
        if line is not None and line.serialized:
            result.fail(
                Clause.BACKORDER_SERIALIZED, subject, f"on line {line.id} of a serialized item"
            )
        if not 0 <= bo.quantity_allocated <= bo.quantity:
            result.fail(
                Clause.BACKORDER_OVER_ALLOCATED,
                subject,
                f"{bo.quantity_allocated} of {bo.quantity} allocated",
            )
        if bo.status == "ALLOCATED" and bo.quantity_allocated != bo.quantity:
            result.fail(
                Clause.BACKORDER_ALLOCATED_SHORT,
                subject,
                f"ALLOCATED with {bo.remaining} of {bo.quantity} remaining",
            )


def _lines(s: Snapshot, result: Check) -> None:
    for line in s.lines.values():
        result.counts["lines"] += 1
        allocated = sum(a.quantity for a in s.allocations_by_line.get(line.id, []))
        opened = s.open_backorders_by_line.get(line.id, [])
        if len(opened) > 1:
            result.fail(
                Clause.LINE_TWO_OPEN_BACKORDERS,
                f"line {line.id}",
                f"OPEN backorders {sorted(bo.id for bo in opened)}",
            )
        remaining = sum(bo.remaining for bo in opened)
        if line.quantity < allocated + remaining + line.quantity_cancelled:
            result.fail(
                Clause.LINE_OVERCOMMITTED,
                f"line {line.id}",
                f"quantity {line.quantity} < allocated {allocated} + backordered {remaining} "
                f"+ cancelled {line.quantity_cancelled}",
            )


# -- from one snapshot to a later one ----------------------------------------------------------


def _since(before: Snapshot, after: Snapshot, result: Check) -> None:
    for b in before.balances.values():
        now = after.balances.get(b.id)
        subject = f"balance {b.id}"
        if now is None:
            result.fail(Clause.BALANCE_GONE, subject, "gone since the snapshot before")
            continue
        result.counts["balances compared with the snapshot before"] += 1
        if now.version < b.version:
            result.fail(
                Clause.BALANCE_VERSION_FELL, subject, f"version {b.version}, then {now.version}"
            )
        if (now.on_hand, now.allocated) != (b.on_hand, b.allocated) and now.version <= b.version:
            result.fail(
                Clause.BALANCE_CHANGED_UNVERSIONED,
                subject,
                f"on hand {b.on_hand} -> {now.on_hand}, allocated {b.allocated} -> "
                f"{now.allocated}, version {b.version} -> {now.version}",
            )
    for order in before.orders.values():
        now_order = after.orders.get(order.id)
        subject = f"order {order.id}"
        if now_order is None:
            result.fail(Clause.ORDER_GONE, subject, "gone since the snapshot before")
            continue
        result.counts["orders compared with the snapshot before"] += 1
        if now_order.version < order.version:
            result.fail(
                Clause.ORDER_VERSION_FELL,
                subject,
                f"version {order.version}, then {now_order.version}",
            )
        if (
            before.rows_of(order.id) != after.rows_of(order.id)
            and now_order.version <= order.version
        ):
            result.fail(
                Clause.ORDER_CHANGED_UNVERSIONED,
                subject,
                f"changed, version {order.version} -> {now_order.version}",
            )


# -- what the clients were told --------------------------------------------------------------

CHANGES_ALWAYS = {
    "addSalesOrderLine",
    "updateSalesOrderLine",
    "deleteSalesOrderLine",
    "packAllocatedOrder",
    "removeAllocationLines",
    "cancelBackorder",
    "deleteBackorder",
}
MAY_APPLY = (Outcome.OK, Outcome.UNKNOWN)
FAILED = (Outcome.REJECTED, Outcome.REFUSED)


class _History:
    """The history and its indexes."""

    def __init__(self, ops: list[Op]) -> None:
        self.ops = ops
        self.by_tag = {op.tag: op for op in ops}

    def of(self, name: str, *outcomes: Outcome) -> list[Op]:
        return [op for op in self.ops if op.name == name and op.outcome in outcomes]

    @cached_property
    def by_order(self) -> dict[int, list[Op]]:
        """The calls on each order after its creation."""
        ops: dict[int, list[Op]] = defaultdict(list)
        for op in self.ops:
            if op.order_id is not None and op.name != "createSalesOrder":
                ops[op.order_id].append(op)
        return ops

    @cached_property
    def created_lines(self) -> dict[int, dict[int, int]]:
        """order id -> {line id: quantity} of the orders a client saw created."""
        return {
            op.order_id: dict(op.result["lines"])
            for op in self.of("createSalesOrder", Outcome.OK)
            if op.order_id is not None
        }

    @cached_property
    def deletions(self) -> dict[int, list[Op]]:
        """line id -> the deleteSalesOrderLine calls that may have deleted it."""
        return _group(self.of("deleteSalesOrderLine", *MAY_APPLY), lambda op: op.args["line_id"])

    @cached_property
    def made(self) -> list[Made]:
        """The allocation lines that answers said were made: by allocateOrder on its
        order, by fillBackorders on the orders it names for each."""
        return [
            Made(op, allocation_id, op.result.get("orders", {}).get(allocation_id, op.order_id),
                 line_id, balance_id, quantity)
            for op in self.of("allocateOrder", Outcome.OK) + self.of("fillBackorders", Outcome.OK)
            for allocation_id, (line_id, balance_id, quantity) in op.result["allocations"].items()
        ]  # fmt: skip

    @cached_property
    def balance_of(self) -> dict[int, int]:
        """allocation line id -> its balance, as the answer that made it said."""
        return {made.allocation_id: made.balance_id for made in self.made}

    @cached_property
    def filled_orders(self) -> Counter[int]:
        """order id -> the fillBackorders calls seen to allocate on it."""
        fills: Counter[int] = Counter()
        for op in self.of("fillBackorders", Outcome.OK):
            fills.update(set(op.result["orders"].values()))
        return fills


@dataclass(frozen=True)
class Made:
    """An allocation line as the answer of the call that made it described it."""

    op: Op
    allocation_id: int
    order_id: int | None
    line_id: int
    balance_id: int
    quantity: int


def _history(s: Snapshot, h: _History, result: Check) -> None:
    _orders(s, h, result)
    _order_lines(s, h, result)
    _line_quantities(s, h, result)
    _allocations(s, h, result)
    _serialized(s, h, result)
    _removals(s, h, result)
    _packs(s, h, result)
    _adjustments(s, h, result)
    _backorder_calls(s, h, result)
    _order_versions(s, h, result)
    _balance_versions(s, h, result)
    _balanced_after_allocation(s, h, result)
    _applied_once(s, h, result)
    result.counts["mutations in the history"] = len(h.ops)


def _unknown(result: Check, applied: bool | None) -> None:
    what = {True: "applied", False: "not applied", None: "undetermined"}[applied]
    result.counts[f"unknown outcomes {what}"] += 1


def _orders(s: Snapshot, h: _History, result: Check) -> None:
    customers = {order.customer for order in s.orders.values()}
    for op in h.of("createSalesOrder", *Outcome):
        if op.outcome is Outcome.OK:
            order = s.orders.get(op.order_id or 0)
            if order is None or order.customer != op.tag:
                result.fail(Clause.ORDER_LOST, op, f"order {op.order_id} is {order}")
        elif op.outcome is Outcome.UNKNOWN:
            _unknown(result, op.tag in customers)
    for order in s.orders.values():
        creator = h.by_tag.get(order.customer)
        if (
            creator is None
            or creator.name != "createSalesOrder"
            or creator.outcome not in MAY_APPLY
        ):
            result.fail(
                Clause.ORDER_NO_CREATOR,
                f"order {order.id}",
                f"customer {order.customer}, made by {creator}",
            )


def _order_lines(s: Snapshot, h: _History, result: Check) -> None:
    """Lines come with their order or by addSalesOrderLine, and go only by
    deleteSalesOrderLine. An add's answer does not say which line it made (another may
    be added before the answer is read), so added lines are counted, per order."""
    known = {line_id for lines in h.created_lines.values() for line_id in lines}
    named: dict[int, list[Op]] = defaultdict(list)  # by calls that left the client's hands
    for op in h.ops:
        if "line_id" in op.args and op.outcome in (Outcome.OK, Outcome.REJECTED):
            named[op.args["line_id"]].append(op)
    for line_id in sorted(known | set(named)):
        if line_id not in s.lines and line_id not in h.deletions:
            refused = ", ".join(str(op) for op in named[line_id]) or "none"
            result.fail(
                Clause.LINE_LOST,
                f"line {line_id}",
                f"gone, and no deletion of it may have succeeded; calls naming it: {refused}",
            )
    for op in h.of("deleteSalesOrderLine", Outcome.OK):
        if op.args["line_id"] in s.lines:
            result.fail(Clause.LINE_DELETE_LOST, op, "the line is still there")
    adds = _group(h.of("addSalesOrderLine", *MAY_APPLY), lambda op: op.order_id)
    for order_id, created in h.created_lines.items():
        added = [line for line in s.lines_of(order_id) if line.id not in created]
        gone = {
            line_id
            for line_id, deletions in h.deletions.items()
            if any(op.order_id == order_id for op in deletions)
            and line_id not in s.lines
            and line_id not in created
        }
        seen = [op for op in adds.get(order_id, []) if op.outcome is Outcome.OK]
        if len(added) + len(gone) < len(seen):
            result.fail(
                Clause.ADDED_LINE_LOST,
                f"order {order_id}",
                f"{len(seen)} lines added, {len(added)} there and {len(gone)} deleted",
            )
        for item_id, lines in _group(added, lambda line: line.item_id).items():
            makers = [op for op in adds.get(order_id, []) if _item(s, op) == item_id]
            if len(lines) > len(makers):
                result.fail(
                    Clause.LINE_NO_MAKER,
                    f"order {order_id}",
                    f"added lines {[line.id for line in lines]} of item {item_id}, by "
                    f"{len(makers)} calls that may have succeeded",
                )
        result.counts["orders whose lines were checked"] += 1


def _item(s: Snapshot, op: Op) -> int | None:
    return s.item_ids.get(op.args["sku"])


def _line_quantities(s: Snapshot, h: _History, result: Check) -> None:
    """A line's quantity is its first one or one that an update may have set; the last
    update a client saw succeed, when nothing could have overtaken it."""
    updates = _group(h.of("updateSalesOrderLine", *MAY_APPLY), lambda op: op.args["line_id"])
    adds = _group(h.of("addSalesOrderLine", *MAY_APPLY), lambda op: op.order_id)
    for line in s.lines.values():
        created = h.created_lines.get(line.order_id)
        if created is None:
            continue  # its order was made by a call of unknown outcome
        if line.id in created:
            first = {created[line.id]}
        else:
            first = {
                op.args["quantity"]
                for op in adds.get(line.order_id, [])
                if _item(s, op) == line.item_id
            }
        ops = updates.get(line.id, [])
        if line.quantity not in first | {op.args["quantity"] for op in ops}:
            result.fail(
                Clause.LINE_QUANTITY_NEVER_ASKED,
                f"line {line.id}",
                f"quantity {line.quantity}, asked for: {sorted(first)} then "
                f"{[op.args['quantity'] for op in ops]}",
            )
        ok = [op for op in ops if op.outcome is Outcome.OK]
        if not ok:
            continue
        last = max(ok, key=lambda op: op.end)
        if all(op.end < last.start for op in ops if op is not last):
            result.counts["lines whose last update was checked"] += 1
            if line.quantity != last.args["quantity"]:
                result.fail(
                    Clause.LINE_UPDATE_LOST, f"line {line.id}", f"{line.quantity} after {last}"
                )


def _allocations(s: Snapshot, h: _History, result: Check) -> None:
    removed = {i for op in h.of("removeAllocationLines", *MAY_APPLY) for i in op.args["ids"]}
    unknown_allocations = {op.order_id for op in h.of("allocateOrder", Outcome.UNKNOWN)}
    # A fill of unknown outcome may have allocated on any line of its item.
    unknown_fills = h.of("fillBackorders", Outcome.UNKNOWN)
    unknown_fill_items = {s.item_ids.get(op.args["sku"]) for op in unknown_fills}
    returned: set[int] = set()
    for made in h.made:
        returned.add(made.allocation_id)
        a = s.allocations.get(made.allocation_id)
        if a is None and made.allocation_id not in removed:
            result.fail(
                Clause.ALLOCATION_LOST,
                made.op,
                f"allocation line {made.allocation_id} is gone, and no removal of it",
            )
        if a is not None and (a.order_id, a.line_id, a.balance_id, a.quantity) != (
            made.order_id, made.line_id, made.balance_id, made.quantity,
        ):  # fmt: skip
            result.fail(
                Clause.ALLOCATION_ALTERED, made.op, f"allocation line {made.allocation_id} is {a}"
            )
    for a in s.allocations.values():
        if a.id in returned:
            continue
        line = s.lines.get(a.line_id)
        if a.order_id not in unknown_allocations and (
            line is None or line.item_id not in unknown_fill_items
        ):
            result.fail(
                Clause.ALLOCATION_NO_MAKER,
                f"allocation line {a.id}",
                f"no allocateOrder of order {a.order_id} or fill of its item that may have made it",
            )
            continue
        result.counts["allocation lines of unknown outcomes"] += 1
    # One that is gone, but that a client learnt of and named in a removal: the answer
    # of the allocateOrder that made it left it out (those still there: NO_MAKER).
    named = {i: op for op in h.of("removeAllocationLines", *Outcome) for i in op.args["ids"]}
    for allocation_id, op in sorted(named.items()):
        if (
            allocation_id not in returned
            and allocation_id not in s.allocations
            and op.order_id not in unknown_allocations
            and not unknown_fills
        ):
            result.fail(
                Clause.ALLOCATION_UNREPORTED,
                f"allocation line {allocation_id}",
                f"named by {op}, in no answer of an allocateOrder of order {op.order_id}",
            )


def _serialized(s: Snapshot, h: _History, result: Check) -> None:
    """allocateOrder skips serialized lines and says so (SERIALIZED_ITEM). A line counts
    as there all through the call when the order was created with it, or when every add
    of its item to the order that may have made it had ended before the call began."""
    adds = _group(h.of("addSalesOrderLine", *MAY_APPLY), lambda op: op.order_id)
    for op in h.of("allocateOrder", Outcome.OK):
        skipped = set(op.result.get("skipped", ()))
        created = h.created_lines.get(op.order_id or 0, {})
        for line in s.lines_of(op.order_id or 0):
            if not line.serialized or line.id in skipped:
                continue
            makers = [add for add in adds.get(line.order_id, []) if _item(s, add) == line.item_id]
            if line.id in created or all(add.end < op.start for add in makers):
                result.fail(
                    Clause.SERIALIZED_NOT_REPORTED,
                    op,
                    f"serialized line {line.id} not reported as SERIALIZED_ITEM",
                )
        for line_id in sorted(skipped):
            reported = s.lines.get(line_id)
            if reported is not None and (
                not reported.serialized or reported.order_id != op.order_id
            ):
                result.fail(
                    Clause.SKIPPED_NOT_SERIALIZED,
                    op,
                    f"reported line {line_id} as SERIALIZED_ITEM; it is {reported}",
                )
            else:
                result.counts["serialized lines reported skipped"] += 1


def _removals(s: Snapshot, h: _History, result: Check) -> None:
    """All or nothing: a removal seen to succeed took every line it named; one that
    failed took none (a line it named may be gone only by another removal)."""
    removed = {i for op in h.of("removeAllocationLines", *MAY_APPLY) for i in op.args["ids"]}
    for op in h.of("removeAllocationLines", Outcome.OK):
        still = [i for i in op.args["ids"] if i in s.allocations]
        if still:
            result.fail(Clause.REMOVAL_LOST, op, f"allocation lines {still} are still there")
        if sorted(set(op.args["ids"])) != sorted(op.result["removed"]):
            result.fail(Clause.REMOVAL_MISREPORTED, op, f"removedIds {op.result['removed']}")
    for op in h.of("removeAllocationLines", *FAILED):
        taken = [i for i in op.args["ids"] if i not in s.allocations and i not in removed]
        if taken:
            result.fail(Clause.REFUSED_REMOVAL_TOOK_LINES, op, f"allocation lines {taken} are gone")
    for op in h.of("removeAllocationLines", Outcome.UNKNOWN):
        # Lines still there say it was not applied; gone ones may be another call's doing.
        _unknown(result, False if any(i in s.allocations for i in op.args["ids"]) else None)


def _packs(s: Snapshot, h: _History, result: Check) -> None:
    returned: set[int] = set()
    for op in h.of("packAllocatedOrder", Outcome.OK):
        for packed_id, quantity in op.result["packed"].items():
            returned.add(packed_id)
            p = s.packed.get(packed_id)
            if p is None or (p.order_id, p.quantity) != (op.order_id, quantity):
                result.fail(Clause.PACK_LOST, op, f"packed line {packed_id} is {p}")
    unknown_packs = {op.order_id for op in h.of("packAllocatedOrder", Outcome.UNKNOWN)}
    for p in s.packed.values():
        if p.id in returned:
            continue
        if p.order_id not in unknown_packs:
            result.fail(
                Clause.PACKED_LINE_NO_MAKER,
                f"packed line {p.id}",
                f"no packAllocatedOrder of order {p.order_id} that may have made it",
            )
            continue
        result.counts["packed lines of unknown outcomes"] += 1


def _adjustments(s: Snapshot, h: _History, result: Check) -> None:
    reasons = {a.reason for a in s.adjustments.values()}
    for op in h.of("adjustInventory", *Outcome):
        if op.outcome is Outcome.OK:
            a = s.adjustments.get(op.result["adjustment_id"])
            if a is None or (a.balance_id, a.quantity, a.reason) != (
                op.result["balance_id"], op.args["quantity"], op.tag,
            ):  # fmt: skip
                result.fail(
                    Clause.ADJUSTMENT_LOST, op, f"adjustment {op.result['adjustment_id']} is {a}"
                )
        elif op.outcome is Outcome.UNKNOWN:
            _unknown(result, op.tag in reasons)
    for a in s.adjustments.values():
        maker = h.by_tag.get(a.reason)
        if maker is None or maker.name != "adjustInventory" or maker.outcome not in MAY_APPLY:
            result.fail(
                Clause.ADJUSTMENT_NO_MAKER, f"adjustment {a.id}", f"reason {a.reason}: {maker}"
            )
        if maker is not None and maker.args.get("quantity", a.quantity) != a.quantity:
            result.fail(
                Clause.ADJUSTMENT_ALTERED,
                f"adjustment {a.id}",
                f"quantity {a.quantity}, {maker} sent {maker.args['quantity']}",
            )


def _backorder_calls(s: Snapshot, h: _History, result: Check) -> None:
    for op in h.of("cancelBackorder", *Outcome):
        bo = s.backorders.get(op.args["backorder_id"])
        if op.outcome is Outcome.OK:
            # Deleting its line takes a cancelled backorder with it. Which line that was
            # the client cannot safely ask (see test_invariants.py on a cancel racing the
            # deletion of its line), so a deletion of any line of the order excuses it.
            line_deleted = any(d.order_id == op.order_id for ds in h.deletions.values() for d in ds)
            if (bo is None and not line_deleted) or (
                bo is not None and (bo.status != "CANCELLED" or bo.cancel_reason != op.tag)
            ):
                result.fail(Clause.CANCEL_LOST, op, f"the backorder is {bo}")
        elif op.outcome is Outcome.UNKNOWN:
            _unknown(result, bo is not None and bo.cancel_reason == op.tag)
    for bo in s.backorders.values():
        if bo.status != "CANCELLED":
            continue
        canceller = h.by_tag.get(bo.cancel_reason or "")
        if (
            canceller is None
            or canceller.name != "cancelBackorder"
            or canceller.outcome not in MAY_APPLY
        ):
            result.fail(
                Clause.CANCELLED_BY_NO_ONE, f"backorder {bo.id}", f"cancelled by {canceller}"
            )
    for op in h.of("deleteBackorder", Outcome.OK):
        if op.args["backorder_id"] in s.backorders:
            result.fail(Clause.BACKORDER_DELETE_LOST, op, "the backorder is still there")


def _order_versions(s: Snapshot, h: _History, result: Check) -> None:
    """Every change bumps the order's version by one; a failed call changes nothing. (An
    order a client changed was first seen in its creation's answer: ORDER_LOST covers
    one that is missing.) Each fillBackorders adds 1 to every order it allocated on;
    one of unknown outcome may have added 1 to any."""
    unknown_fills = len(h.of("fillBackorders", Outcome.UNKNOWN))
    for order_id in sorted(set(h.by_order) | set(h.filled_orders)):
        order = s.orders.get(order_id)
        if order is None:
            continue
        definite, maybe = h.filled_orders[order_id], unknown_fills
        for op in h.by_order.get(order_id, []):
            if op.outcome is Outcome.OK and (
                op.name in CHANGES_ALWAYS or op.result.get("allocations")
            ):
                definite += 1
            elif op.outcome in MAY_APPLY:
                maybe += 1  # an allocateOrder with nothing to do keeps the version
        if not definite <= order.version - 1 <= definite + maybe:
            result.fail(
                Clause.ORDER_VERSION_COUNT,
                f"order {order_id}",
                f"version {order.version} after {definite} changes "
                f"(and {maybe} that may have changed it)",
            )
        else:
            result.counts["order versions checked"] += 1


def _balance_versions(s: Snapshot, h: _History, result: Check) -> None:
    """A balance starts at version 1 and each transaction that changes it adds 1: its
    adjustments, and each allocateOrder, packAllocatedOrder and removeAllocationLines
    that took from it or gave back to it. Exact when every such call's outcome is known;
    otherwise calls of unknown outcome may add to it."""
    changes: Counter[int] = Counter(a.balance_id for a in s.adjustments.values())
    maybe = 0
    for op in h.of("allocateOrder", Outcome.OK) + h.of("fillBackorders", Outcome.OK):
        changes.update({balance for (_, balance, _) in op.result["allocations"].values()})
    for op in h.of("packAllocatedOrder", Outcome.OK):
        packed = [part for p in op.result["packed"] for part in s.parts_by_packed_line.get(p, [])]
        changes.update(
            {a.balance_id for part in packed if (a := s.allocations.get(part.allocation_id))}
        )
    for op in h.of("removeAllocationLines", Outcome.OK):
        balances = {h.balance_of.get(i) for i in op.args["ids"]}
        if None in balances:
            # It removed a line that no answer reported: its making and its removal
            # changed a balance that is not known (ALLOCATION_UNREPORTED says why).
            maybe += 2
        changes.update(b for b in balances if b is not None)
    for name in ("allocateOrder", "packAllocatedOrder", "removeAllocationLines", "fillBackorders"):
        maybe += len(h.of(name, Outcome.UNKNOWN))
    for b in s.balances.values():
        if not changes[b.id] <= b.version - 1 <= changes[b.id] + maybe:
            result.fail(
                Clause.BALANCE_VERSION_COUNT,
                f"balance {b.id}",
                f"version {b.version} after {changes[b.id]} changes "
                f"(and {maybe} calls that may have changed it)",
            )
        elif maybe == 0:
            result.counts["balance versions checked exactly"] += 1


def _balanced_after_allocation(s: Snapshot, h: _History, result: Check) -> None:
    """Right after an order's last successful allocateOrder (nothing about the order
    changed, or may have, after it began), each line is fully accounted for."""
    for ops in h.by_order.values():
        allocations = [op for op in ops if op.name == "allocateOrder" and op.outcome is Outcome.OK]
        if not allocations:
            continue
        last = max(allocations, key=lambda op: op.end)
        others = [op for op in ops if op is not last and op.outcome is not Outcome.REFUSED]
        if any(op.end >= last.start for op in others):
            continue
        result.counts["orders checked right after their last allocation"] += 1
        for line in s.lines_of(last.order_id or 0):
            if not line.serialized and not line_balanced(s, line):
                result.fail(
                    Clause.LINE_UNBALANCED_AFTER_ALLOCATION,
                    f"line {line.id}",
                    f"not fully accounted for after {last}",
                )


def _applied_once(s: Snapshot, h: _History, result: Check) -> None:
    """However often a call was sent (clients with an Idempotency-Key send it again after
    a lost answer), what it made is there once: the rows that carry its tag."""
    tagged = {
        "orders": Counter(order.customer for order in s.orders.values()),
        "adjustments": Counter(a.reason for a in s.adjustments.values()),
    }
    for rows, tags in tagged.items():
        for tag, count in tags.items():
            if count > 1:
                result.fail(Clause.APPLIED_TWICE, h.by_tag.get(tag, tag), f"{count} {rows}")
    resent = [op for op in h.ops if op.attempts > 1]
    result.counts["calls sent again with their Idempotency-Key"] += len(resent)


# -- snapshots taken while the load runs -------------------------------------------------------


def as_seen_at(history: Sequence[Op], began: float, fixed: float) -> list[Op]:
    """The history as a snapshot fixed between `began` and `fixed` can know it. A call
    that ended before `began` is as it was; one that began after `fixed` cannot show in
    it and is left out; any other may or may not show, so it counts as UNKNOWN (still
    running), and what it named may be newer than the snapshot."""
    seen = []
    for op in history:
        if op.start > fixed:
            continue
        if op.end >= began and (op.outcome is Outcome.OK or op.start >= began):
            seen.append(dataclasses.replace(op, outcome=Outcome.UNKNOWN, end=math.inf))
        else:
            seen.append(op)
    return seen


class Watcher:
    """Called by the load every so many calls (workload.Config.snapshot_every): takes a
    snapshot while the clients go on, checks it against the history as far as the
    snapshot can know it, and compares it with the snapshot before."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.previous: Snapshot | None = None
        self.taken: list[tuple[int, int]] = []  # (calls made, calls in flight) at each
        self.missed: list[str] = []  # snapshots the database could not give (faults)
        self.violations: list[str] = []
        self.counts: Counter[str] = Counter()

    async def __call__(self, history: Sequence[Op], calls: int, in_flight: int) -> None:
        try:
            taken = await take_snapshot(self.engine)
        except (DBAPIError, OSError) as error:
            self.missed.append(f"after {calls} calls: {type(error).__name__}")
            return
        seen = as_seen_at(history, taken.began, taken.fixed)
        verdict = check(taken.snapshot, seen, previous=self.previous)
        self.previous = taken.snapshot
        self.taken.append((calls, in_flight))
        self.counts.update(
            {k: v for k, v in verdict.counts.items() if "compared with the snapshot" in k}
        )
        self.violations += [f"snapshot after {calls} calls: {v}" for v in verdict.violations]
