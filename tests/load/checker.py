"""The checker: reads the whole database and judges it against SPEC sections 4 and 5 and,
when given one, against the history the clients kept (tests/load/workload.py).

Like Jepsen's bank test it knows nothing of how the server works: it sees rows and what
the clients were told. `check` returns the violations (each a sentence; none is good)
and counts of what it could check.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tests.load.workload import Op, Outcome


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

    balances: dict[int, Balance]
    adjustments: dict[int, Adjustment]
    orders: dict[int, Order]
    lines: dict[int, Line]
    allocations: dict[int, Allocation]
    backorders: dict[int, Backorder]
    packed: dict[int, PackedLine]
    parts: list[PackedPart]

    def lines_of(self, order_id: int) -> list[Line]:
        return self._lines_by_order.get(order_id, [])

    # Indexes, made on first use.

    @cached_property
    def _lines_by_order(self) -> dict[int, list[Line]]:
        return _group(
            sorted(self.lines.values(), key=lambda line: line.line_number),
            lambda line: line.order_id,
        )

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


async def read_snapshot(engine: AsyncEngine) -> Snapshot:
    """All of it in one REPEATABLE READ transaction, so the rows agree with each other."""
    async with engine.connect() as base:
        conn = await base.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            return await _read(conn)


T = TypeVar("T")


async def _rows(conn: AsyncConnection, name: str, kind: Callable[..., T]) -> dict[int, T]:
    rows = await conn.execute(text(_QUERIES[name] + " ORDER BY id"))
    return {row[0]: kind(*row) for row in rows}


async def _read(conn: AsyncConnection) -> Snapshot:
    parts = await conn.execute(
        text("SELECT packed_line_id, allocation_id, quantity FROM packed_line_allocations")
    )
    return Snapshot(
        balances=await _rows(conn, "balances", Balance),
        adjustments=await _rows(conn, "adjustments", Adjustment),
        orders=await _rows(conn, "orders", Order),
        lines=await _rows(conn, "lines", Line),
        allocations=await _rows(conn, "allocations", Allocation),
        backorders=await _rows(conn, "backorders", Backorder),
        packed=await _rows(conn, "packed", PackedLine),
        parts=[PackedPart(*row) for row in parts],
    )


@dataclass
class Check:
    violations: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def fail(self, message: str) -> None:
        self.violations.append(message)


def check(snapshot: Snapshot, history: Sequence[Op] = ()) -> Check:
    result = Check()
    _invariants(snapshot, result)
    if history:
        _history(snapshot, list(history), result)
    return result


async def violations(engine: AsyncEngine, history: Sequence[Op] = ()) -> list[str]:
    return check(await read_snapshot(engine), history).violations


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


def _invariants(s: Snapshot, result: Check) -> None:
    _balances(s, result)
    _allocation_lines(s, result)
    _packed_lines(s, result)
    _backorders_and_lines(s, result)
    for order in s.orders.values():
        result.counts["orders"] += 1
        status = derived_status(s, order.id)
        if order.status != status:
            result.fail(f"order {order.id}: status {order.status}, its quantities say {status}")


def _balances(s: Snapshot, result: Check) -> None:
    """0 <= allocated <= on hand; allocated = its unpacked allocation quantities; on hand =
    its adjustments - what was packed from it."""
    adjusted: Counter[int] = Counter()
    for adjustment in s.adjustments.values():
        adjusted[adjustment.balance_id] += adjustment.quantity
    for b in s.balances.values():
        result.counts["balances"] += 1
        allocations = s.allocations_by_balance.get(b.id, [])
        if not 0 <= b.allocated <= b.on_hand:
            result.fail(f"balance {b.id}: allocated {b.allocated}, on hand {b.on_hand}")
        unpacked = sum(a.quantity - a.quantity_packed for a in allocations)
        if b.allocated != unpacked:
            result.fail(f"balance {b.id}: allocated {b.allocated} != unpacked {unpacked}")
        shipped = sum(
            part.quantity for a in allocations for part in s.parts_by_allocation.get(a.id, [])
        )
        if b.on_hand != adjusted[b.id] - shipped:
            result.fail(
                f"balance {b.id}: on hand {b.on_hand} != adjustments {adjusted[b.id]} "
                f"- packed {shipped}"
            )


def _allocation_lines(s: Snapshot, result: Check) -> None:
    for a in s.allocations.values():
        result.counts["allocation lines"] += 1
        line = s.lines.get(a.line_id)
        balance = s.balances.get(a.balance_id)
        if line is None or line.order_id != a.order_id:
            result.fail(f"allocation {a.id}: not on a line of its order {a.order_id}")
        elif balance is None or balance.item_id != line.item_id:
            result.fail(f"allocation {a.id}: its balance is not of its line's item")
        elif line.serialized:
            result.fail(f"allocation {a.id}: on a line of a serialized item")
        packed = sum(part.quantity for part in s.parts_by_allocation.get(a.id, []))
        # packAllocatedOrder packs every unpacked quantity: never part of a line.
        if a.quantity_packed not in (0, a.quantity) or packed != a.quantity_packed:
            result.fail(
                f"allocation {a.id}: quantity {a.quantity}, packed {a.quantity_packed}, "
                f"in packed lines {packed}"
            )


def _packed_lines(s: Snapshot, result: Check) -> None:
    for p in s.packed.values():
        result.counts["packed lines"] += 1
        parts = s.parts_by_packed_line.get(p.id, [])
        if not parts or p.quantity != sum(part.quantity for part in parts):
            result.fail(f"packed line {p.id}: quantity {p.quantity} != its allocations' {parts}")
        if any(s.allocations[part.allocation_id].line_id != p.line_id for part in parts):
            result.fail(f"packed line {p.id}: packs allocation lines of another line")


def _backorders_and_lines(s: Snapshot, result: Check) -> None:
    """Every line: quantity >= allocated + open backorder remaining + cancelled, and at
    most one OPEN backorder."""
    for bo in s.backorders.values():
        result.counts["backorders"] += 1
        line = s.lines.get(bo.line_id)
        if line is None or line.order_id != bo.order_id or line.serialized:
            result.fail(f"backorder {bo.id}: not on an allocatable line of its order")
        if not 0 <= bo.quantity_allocated <= bo.quantity:
            result.fail(f"backorder {bo.id}: {bo.quantity_allocated} of {bo.quantity} allocated")
        if bo.status == "ALLOCATED" and bo.quantity_allocated != bo.quantity:
            result.fail(f"backorder {bo.id}: ALLOCATED with {bo.remaining} remaining")
    for line in s.lines.values():
        result.counts["lines"] += 1
        allocated = sum(a.quantity for a in s.allocations_by_line.get(line.id, []))
        opened = s.open_backorders_by_line.get(line.id, [])
        if len(opened) > 1:
            result.fail(f"line {line.id}: {len(opened)} OPEN backorders")
        remaining = sum(bo.remaining for bo in opened)
        if line.quantity < allocated + remaining + line.quantity_cancelled:
            result.fail(
                f"line {line.id}: quantity {line.quantity} < allocated {allocated} + "
                f"backordered {remaining} + cancelled {line.quantity_cancelled}"
            )


# -- what the clients were told --------------------------------------------------------------

CHANGES_ALWAYS = {
    "updateSalesOrderLine",
    "packAllocatedOrder",
    "removeAllocationLines",
    "cancelBackorder",
    "deleteBackorder",
}
MAY_APPLY = (Outcome.OK, Outcome.UNKNOWN)


def _of(history: Iterable[Op], name: str, *outcomes: Outcome) -> list[Op]:
    return [op for op in history if op.name == name and op.outcome in outcomes]


def _history(s: Snapshot, history: list[Op], result: Check) -> None:
    by_tag = {op.tag: op for op in history}
    _orders(s, history, by_tag, result)
    _allocations(s, history, result)
    _removals(s, history, result)
    _packs(s, history, result)
    _adjustments(s, history, by_tag, result)
    _backorders(s, history, by_tag, result)
    _line_quantities(s, history, result)
    _versions(s, history, result)
    _balanced_after_allocation(s, history, result)
    result.counts["mutations in the history"] = len(history)


def _unknown(result: Check, applied: bool | None) -> None:
    what = {True: "applied", False: "not applied", None: "undetermined"}[applied]
    result.counts[f"unknown outcomes {what}"] += 1


def _orders(s: Snapshot, history: list[Op], by_tag: dict[str, Op], result: Check) -> None:
    customers = {order.customer for order in s.orders.values()}
    for op in _of(history, "createSalesOrder", *Outcome):
        if op.outcome is Outcome.OK:
            order = s.orders.get(op.order_id or 0)
            lines = {line.id for line in s.lines_of(op.order_id or 0)}
            if order is None or order.customer != op.tag:
                result.fail(f"{op}: order {op.order_id} is not there")
            elif lines != set(op.result["lines"]):
                result.fail(f"{op}: lines {sorted(lines)} != {sorted(op.result['lines'])}")
        elif op.outcome is Outcome.UNKNOWN:
            _unknown(result, op.tag in customers)
    for order in s.orders.values():
        creator = by_tag.get(order.customer)
        if creator is None or creator.outcome not in MAY_APPLY:
            result.fail(f"order {order.id} ({order.customer}): no client saw it made: {creator}")


def _allocations(s: Snapshot, history: list[Op], result: Check) -> None:
    removed = {
        i for op in _of(history, "removeAllocationLines", *MAY_APPLY) for i in op.args["ids"]
    }
    unknown_allocations = {op.order_id for op in _of(history, "allocateOrder", Outcome.UNKNOWN)}
    returned: set[int] = set()
    for op in _of(history, "allocateOrder", Outcome.OK):
        for allocation_id, (line_id, balance_id, quantity) in op.result["allocations"].items():
            returned.add(allocation_id)
            a = s.allocations.get(allocation_id)
            if a is None:
                if allocation_id not in removed:
                    result.fail(f"{op}: allocation {allocation_id} is gone, and no removal")
            elif (a.order_id, a.line_id, a.balance_id, a.quantity) != (
                op.order_id, line_id, balance_id, quantity,
            ):  # fmt: skip
                result.fail(f"{op}: allocation {allocation_id} is {a}")
    for a in s.allocations.values():
        if a.id in returned:
            continue
        if a.order_id in unknown_allocations:
            result.counts["allocation lines of unknown outcomes"] += 1
        else:
            result.fail(f"allocation {a.id}: no allocateOrder of order {a.order_id} made it")


def _removals(s: Snapshot, history: list[Op], result: Check) -> None:
    """All or nothing: a removal seen to succeed took every line it named; one that
    failed took none (a line it named may be gone only by another removal)."""
    removed = {
        i for op in _of(history, "removeAllocationLines", *MAY_APPLY) for i in op.args["ids"]
    }
    for op in _of(history, "removeAllocationLines", Outcome.OK):
        still = [i for i in op.args["ids"] if i in s.allocations]
        if still:
            result.fail(f"{op}: allocation lines {still} are still there")
        if sorted(set(op.args["ids"])) != sorted(op.result["removed"]):
            result.fail(f"{op}: removed {op.result['removed']}")
    for op in _of(history, "removeAllocationLines", Outcome.REJECTED, Outcome.REFUSED):
        taken = [i for i in op.args["ids"] if i not in s.allocations and i not in removed]
        if taken:
            result.fail(f"{op}: failed, yet allocation lines {taken} are gone")
    for op in _of(history, "removeAllocationLines", Outcome.UNKNOWN):
        # Lines still there say it was not applied; gone ones may be another call's doing.
        _unknown(result, False if any(i in s.allocations for i in op.args["ids"]) else None)


def _packs(s: Snapshot, history: list[Op], result: Check) -> None:
    returned: set[int] = set()
    for op in _of(history, "packAllocatedOrder", Outcome.OK):
        for packed_id, quantity in op.result["packed"].items():
            returned.add(packed_id)
            p = s.packed.get(packed_id)
            if p is None or (p.order_id, p.quantity) != (op.order_id, quantity):
                result.fail(f"{op}: packed line {packed_id} is {p}")
    unknown_packs = {op.order_id for op in _of(history, "packAllocatedOrder", Outcome.UNKNOWN)}
    for p in s.packed.values():
        if p.id in returned:
            continue
        if p.order_id in unknown_packs:
            result.counts["packed lines of unknown outcomes"] += 1
        else:
            result.fail(f"packed line {p.id}: no packAllocatedOrder of order {p.order_id} made it")


def _adjustments(s: Snapshot, history: list[Op], by_tag: dict[str, Op], result: Check) -> None:
    reasons = {a.reason for a in s.adjustments.values()}
    for op in _of(history, "adjustInventory", *Outcome):
        if op.outcome is Outcome.OK:
            a = s.adjustments.get(op.result["adjustment_id"])
            if a is None or (a.balance_id, a.quantity, a.reason) != (
                op.result["balance_id"], op.args["quantity"], op.tag,
            ):  # fmt: skip
                result.fail(f"{op}: adjustment {op.result['adjustment_id']} is {a}")
        elif op.outcome is Outcome.UNKNOWN:
            _unknown(result, op.tag in reasons)
    for a in s.adjustments.values():
        maker = by_tag.get(a.reason)
        if maker is None or maker.outcome not in MAY_APPLY:
            result.fail(f"adjustment {a.id} ({a.reason}): no client saw it made: {maker}")
        elif maker.args["quantity"] != a.quantity:
            result.fail(f"adjustment {a.id}: quantity {a.quantity}, {maker} sent another")


def _backorders(s: Snapshot, history: list[Op], by_tag: dict[str, Op], result: Check) -> None:
    for op in _of(history, "cancelBackorder", *Outcome):
        bo = s.backorders.get(op.args["backorder_id"])
        if op.outcome is Outcome.OK and (
            bo is None or bo.status != "CANCELLED" or bo.cancel_reason != op.tag
        ):
            result.fail(f"{op}: the backorder is {bo}")
        elif op.outcome is Outcome.UNKNOWN:
            _unknown(result, bo is not None and bo.cancel_reason == op.tag)
    for bo in s.backorders.values():
        if bo.status != "CANCELLED":
            continue
        canceller = by_tag.get(bo.cancel_reason or "")
        if canceller is None or canceller.outcome not in MAY_APPLY:
            result.fail(f"backorder {bo.id}: cancelled, but no client saw it: {canceller}")
    for op in _of(history, "deleteBackorder", Outcome.OK):
        if op.args["backorder_id"] in s.backorders:
            result.fail(f"{op}: the backorder is still there")


def _line_quantities(s: Snapshot, history: list[Op], result: Check) -> None:
    """A line's quantity is its first one or one that an update may have set; the last
    update a client saw succeed, when nothing could have overtaken it."""
    created: dict[int, int] = {}
    for op in _of(history, "createSalesOrder", Outcome.OK):
        created.update(op.result["lines"])
    updates: dict[int, list[Op]] = defaultdict(list)
    for op in _of(history, "updateSalesOrderLine", *MAY_APPLY):
        updates[op.args["line_id"]].append(op)
    for line in s.lines.values():
        if line.id not in created:
            continue  # its order was made by a call of unknown outcome
        possible = {created[line.id]} | {op.args["quantity"] for op in updates[line.id]}
        if line.quantity not in possible:
            result.fail(f"line {line.id}: quantity {line.quantity}, never asked for")
        ok = [op for op in updates[line.id] if op.outcome is Outcome.OK]
        if not ok:
            continue
        last = max(ok, key=lambda op: op.end)
        if all(op.end < last.start for op in updates[line.id] if op is not last):
            result.counts["lines whose last update was checked"] += 1
            if line.quantity != last.args["quantity"]:
                result.fail(f"line {line.id}: quantity {line.quantity} after {last}")


def _order_ops(history: list[Op]) -> dict[int, list[Op]]:
    ops: dict[int, list[Op]] = defaultdict(list)
    for op in history:
        if op.order_id is not None and op.name != "createSalesOrder":
            ops[op.order_id].append(op)
    return ops


def _versions(s: Snapshot, history: list[Op], result: Check) -> None:
    """Every change bumps the order's version by one; a failed call changes nothing."""
    for order_id, ops in _order_ops(history).items():
        order = s.orders.get(order_id)
        if order is None:
            result.fail(f"order {order_id}: gone, yet clients changed it")
            continue
        definite = maybe = 0
        for op in ops:
            if op.outcome is Outcome.OK and (
                op.name in CHANGES_ALWAYS or op.result.get("allocations")
            ):
                definite += 1
            elif op.outcome is Outcome.OK or op.outcome is Outcome.UNKNOWN:
                maybe += 1  # an allocateOrder with nothing to do keeps the version
        if not definite <= order.version - 1 <= definite + maybe:
            result.fail(
                f"order {order_id}: version {order.version} after {definite} changes "
                f"(and {maybe} that may have changed it)"
            )
        else:
            result.counts["order versions checked"] += 1


def _balanced_after_allocation(s: Snapshot, history: list[Op], result: Check) -> None:
    """Right after an order's last successful allocateOrder (nothing about the order
    changed, or may have, after it began), each line is fully accounted for."""
    for order_id, ops in _order_ops(history).items():
        allocations = [op for op in ops if op.name == "allocateOrder" and op.outcome is Outcome.OK]
        if not allocations:
            continue
        last = max(allocations, key=lambda op: op.end)
        others = [op for op in ops if op is not last and op.outcome is not Outcome.REFUSED]
        if any(op.end >= last.start for op in others):
            continue
        result.counts["orders checked right after their last allocation"] += 1
        for line in s.lines_of(order_id):
            if not line.serialized and not line_balanced(s, line):
                result.fail(f"line {line.id}: not fully accounted for after {last}")
