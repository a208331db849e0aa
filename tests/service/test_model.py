"""Model-based test: Hypothesis drives the use cases with random operations on the real
database and, after every step, checks that the database agrees with a plain in-memory
model of SPEC section 4 (and the README's decisions where the spec is silent), and that
tests/load/checker.py finds every invariant intact.

The model is written from the rules, not from the code: a list of balances, orders,
lines, allocation lines, backorders and packed lines, and a dozen lines per operation.
Ids are the database's: the model takes them from what the use cases return, and
learns the ids of rows the use cases do not return (order lines, new backorders) by
their place (an order's line number, a line's one OPEN backorder).

Each example draws the lots' dates and the locations' pick sequences from a few values,
so that balances often tie on every key of a strategy but the id, and counts the picks
that the id decided.

The machine runs in a sync test with its own event loop (asyncio.Runner) and its own
engine, since engines are bound to the loop they connect in. It runs 20 examples of up
to 30 steps; with MODEL_DEEP=1 (as `make soak` runs it) 100 examples of up to 50 steps:

    MODEL_DEEP=1 .venv/bin/pytest tests/service/test_model.py
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text

from db.database import Database
from db.engine import create_engine
from db.repositories import SqlUnitOfWork
from db.tables import Base
from services import catalog, orders
from services.domain.errors import DomainError
from services.domain.planner import AllocationStrategy
from tests.ledger import unbalanced
from tests.load import checker

T = TypeVar("T")

SERIALIZED = {"BOLT": False, "NUT": False, "PHONE": True}
LOTS = ["L1", "L2", "L3"]
LOCATIONS = ["A-01", "A-02", "A-03"]
# Each example draws the lots' dates (received on a day of January 2026, expires on a day
# of June 2026 or never) and the locations' pick sequences from a few values, so that
# balances often tie on every key but the last and the id must break the tie (SPEC 4).
RECEIVED_DAYS = st.sampled_from([1, 2])
EXPIRY_DAYS = st.sampled_from([None, 10, 10, 20])
PICK_SEQUENCES = st.sampled_from([1, 2])  # three locations: two always share one
# How many examples, and how long: MODEL_DEEP=1 (`make soak`) runs many more and longer.
DEEP = os.environ.get("MODEL_DEEP", "") not in ("", "0")
EXAMPLES, STEPS = (100, 50) if DEEP else (20, 30)

Dates = tuple[int, int | None]  # (received day, expiry day or None)


# -- the model -------------------------------------------------------------------------------


class Refused(Exception):  # noqa: N818 - the model's answer, like a DomainError
    def __init__(self, code: str, current_version: int | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.current_version = current_version


@dataclass
class MBalance:
    id: int
    sku: str
    lot: str
    location: str
    on_hand: int = 0
    allocated: int = 0


@dataclass
class MOrder:
    id: int
    version: int = 1


@dataclass
class MLine:
    id: int | None  # learnt from the database after the order is made
    order_id: int
    number: int
    sku: str
    quantity: int
    cancelled: int = 0


@dataclass
class MAllocation:
    id: int
    order_id: int
    line_id: int
    balance_id: int
    quantity: int
    packed: int = 0


@dataclass
class MBackorder:
    id: int | None  # learnt from the database: its line's one OPEN backorder
    order_id: int
    line_id: int
    quantity: int
    allocated: int = 0
    status: str = "OPEN"

    @property
    def remaining(self) -> int:
        return self.quantity - self.allocated


class Model:
    def __init__(self) -> None:
        self.lots: dict[str, Dates] = {}  # drawn by the machine's set-up
        self.picks: dict[str, int] = {}  # location -> pick sequence, likewise
        self.balances: dict[int, MBalance] = {}
        self.adjustments: dict[int, tuple[int, int]] = {}  # id -> (balance, quantity)
        self.orders: dict[int, MOrder] = {}
        self.lines: list[MLine] = []
        self.allocations: dict[int, MAllocation] = {}
        self.backorders: list[MBackorder] = []
        self.packed: dict[int, tuple[int, int, int]] = {}  # id -> (order, line, quantity)

    # -- reading ---------------------------------------------------------------------------

    def sort_key(self, b: MBalance, strategy: AllocationStrategy) -> tuple[object, ...]:
        """SPEC 4's order for the strategy; the balance id last breaks every tie."""
        received, expires = self.lots[b.lot]
        pick = self.picks[b.location]
        if strategy is AllocationStrategy.FIFO:
            return (received, pick, b.id)
        if strategy is AllocationStrategy.LOCATION:
            return (pick, received, b.id)
        return (expires is None, expires or 0, received, pick, b.id)  # FEFO

    def balance(self, sku: str, lot: str, location: str) -> MBalance | None:
        return next(
            (
                b
                for b in self.balances.values()
                if (b.sku, b.lot, b.location) == (sku, lot, location)
            ),
            None,
        )

    def lines_of(self, order_id: int) -> list[MLine]:
        return sorted(
            (ln for ln in self.lines if ln.order_id == order_id), key=lambda ln: ln.number
        )

    def line(self, line_id: int) -> MLine:
        return next(ln for ln in self.lines if ln.id == line_id)

    def allocated(self, line_id: int | None) -> int:
        return sum(a.quantity for a in self.allocations.values() if a.line_id == line_id)

    def open_backorder(self, line_id: int | None) -> MBackorder | None:
        return next(
            (b for b in self.backorders if b.line_id == line_id and b.status == "OPEN"), None
        )

    def status(self, order_id: int) -> str:
        lines = [ln for ln in self.lines_of(order_id) if not SERIALIZED[ln.sku]]
        wanted = sum(ln.quantity - ln.cancelled for ln in lines)
        mine = [a for a in self.allocations.values() if a.order_id == order_id]
        allocated = sum(a.quantity for a in mine)
        packed = sum(a.packed for a in mine)
        if packed:
            return "PACKED" if packed >= wanted else "PARTIALLY_PACKED"
        if allocated:
            return "ALLOCATED" if allocated >= wanted else "PARTIALLY_ALLOCATED"
        return "OPEN"

    def order_of_guard(self, order_id: int, expected: int | None) -> MOrder:
        order = self.orders[order_id]
        if expected is not None and expected != order.version:
            raise Refused("VERSION_CONFLICT", order.version)
        return order

    # -- the operations: refuse before changing anything, then change ----------------------

    def adjust(
        self, sku: str, lot: str, location: str, quantity: int, result: Any
    ) -> catalog.AdjustmentResult:
        if quantity == 0:
            raise Refused("INVALID_QUANTITY")
        if sku not in SERIALIZED:
            raise Refused("NOT_FOUND")
        balance = self.balance(sku, lot, location)
        if (balance.on_hand - balance.allocated if balance else 0) + quantity < 0:
            raise Refused("INSUFFICIENT_STOCK")
        assert isinstance(result, catalog.AdjustmentResult)
        if balance is None:
            balance = self.balances[result.balance_id] = MBalance(
                result.balance_id, sku, lot, location
            )
        assert result.balance_id == balance.id
        balance.on_hand += quantity
        self.adjustments[result.adjustment_id] = (balance.id, quantity)
        return result

    def create_order(self, lines: list[tuple[str, int]], result: Any) -> int:
        for sku, quantity in lines:
            if sku not in SERIALIZED:
                raise Refused("NOT_FOUND")
            if quantity <= 0:
                raise Refused("INVALID_QUANTITY")
        assert isinstance(result, int)
        self.orders[result] = MOrder(result)
        for number, (sku, quantity) in enumerate(lines, start=1):
            self.lines.append(MLine(None, result, number, sku, quantity))
        return result

    def update_line(self, line_id: int, quantity: int, expected: int | None, result: Any) -> int:
        line = self.line(line_id)
        order = self.order_of_guard(line.order_id, expected)
        if quantity <= 0:
            raise Refused("INVALID_QUANTITY")
        allocated = self.allocated(line_id)
        if quantity < allocated:
            raise Refused("QUANTITY_BELOW_ALLOCATED")
        assert result == order.id
        line.quantity = quantity
        # Lowering gives up cancelled quantity first, then shrinks the open backorder.
        line.cancelled = min(line.cancelled, quantity - allocated)
        backorder = self.open_backorder(line_id)
        room = quantity - allocated - line.cancelled
        if backorder is not None and backorder.remaining > room:
            self._resize(backorder, room)
        order.version += 1
        return order.id

    def allocate(
        self, order_id: int, strategy: AllocationStrategy, expected: int | None, result: Any
    ) -> orders.AllocationResult:
        order = self.order_of_guard(order_id, expected)
        available = {b.id: b.on_hand - b.allocated for b in self.balances.values()}
        in_stock = {i for i, quantity in available.items() if quantity > 0}
        picks: list[tuple[int, int, int]] = []  # (line, balance, quantity)
        outcome: list[tuple[MLine, int, int]] = []  # (line, allocated now, shortfall)
        for line in self.lines_of(order_id):
            open_demand = line.quantity - self.allocated(line.id) - line.cancelled
            if SERIALIZED[line.sku] or open_demand <= 0:
                continue
            taken = 0
            stock = [b for b in self.balances.values() if b.sku == line.sku]
            for b in sorted(stock, key=lambda b: self.sort_key(b, strategy)):
                take = min(open_demand - taken, available[b.id])
                if take > 0:
                    self._count_tie(b, stock, strategy, in_stock)
                    assert line.id is not None
                    picks.append((line.id, b.id, take))
                    available[b.id] -= take
                    taken += take
            outcome.append((line, taken, open_demand - taken))
        assert isinstance(result, orders.AllocationResult)
        got = [(a.line_id, a.balance_id, a.quantity) for a in result.allocations]
        assert got == picks, f"allocated {got}, the model {picks}"
        serialized = [ln.id for ln in self.lines_of(order_id) if SERIALIZED[ln.sku]]
        assert result.serialized_line_ids == serialized
        changed = bool(picks)
        for allocation_id, (line_id, balance_id, quantity) in zip(
            result.allocation_ids, picks, strict=True
        ):
            self.allocations[allocation_id] = MAllocation(
                allocation_id, order_id, line_id, balance_id, quantity
            )
            self.balances[balance_id].allocated += quantity
        for line, now, shortfall in outcome:
            changed |= self._backorder_after_allocation(line, now, shortfall)
        if changed:  # an allocateOrder with nothing to do keeps the version
            order.version += 1
        return result

    def _count_tie(
        self, b: MBalance, stock: list[MBalance], strategy: AllocationStrategy, in_stock: set[int]
    ) -> None:
        """Count a pick that only the id put before (or after) another balance in stock."""
        key = self.sort_key(b, strategy)[:-1]
        if any(
            c.id != b.id and c.id in in_stock and self.sort_key(c, strategy)[:-1] == key
            for c in stock
        ):
            OUTCOMES[f"allocateOrder {strategy.value} tie broken by id"] += 1

    def _backorder_after_allocation(self, line: MLine, now: int, shortfall: int) -> bool:
        """README, backorder sizing: new stock fills the open backorder first; filled
        completely it is ALLOCATED and any further shortfall opens a new one; filled in
        part, it is resized so that its remaining quantity is the shortfall."""
        backorder = self.open_backorder(line.id)
        changed = False
        if backorder is not None:
            fill = min(now, backorder.remaining)
            if fill < backorder.remaining:
                return self._resize(backorder, shortfall, filled=fill)
            backorder.allocated += fill
            backorder.status = "ALLOCATED"
            changed = True
        if shortfall > 0:
            assert line.id is not None
            self.backorders.append(MBackorder(None, line.order_id, line.id, shortfall))
            changed = True
        return changed

    def _resize(self, backorder: MBackorder, remaining: int, filled: int = 0) -> bool:
        """A backorder that never got stock and needs none is dropped; one that got some
        is checked off (ALLOCATED)."""
        allocated = backorder.allocated + filled
        if (allocated + remaining, allocated) == (backorder.quantity, backorder.allocated):
            return False
        backorder.quantity, backorder.allocated = allocated + remaining, allocated
        if backorder.quantity == 0:
            self.backorders.remove(backorder)
        elif remaining == 0:
            backorder.status = "ALLOCATED"
        return True

    def pack(self, order_id: int, expected: int | None, result: Any) -> list[int]:
        order = self.order_of_guard(order_id, expected)
        unpacked = [
            a for a in self.allocations.values() if a.order_id == order_id and a.packed < a.quantity
        ]
        if not unpacked:
            raise Refused("NOTHING_TO_PACK")
        assert isinstance(result, list)
        lines = [ln for ln in self.lines_of(order_id) if any(a.line_id == ln.id for a in unpacked)]
        assert len(result) == len(lines), (result, lines)
        for packed_id, line in zip(result, lines, strict=True):
            mine = [a for a in unpacked if a.line_id == line.id]
            assert line.id is not None
            self.packed[packed_id] = (order_id, line.id, sum(a.quantity - a.packed for a in mine))
        for a in unpacked:
            balance = self.balances[a.balance_id]
            balance.on_hand -= a.quantity - a.packed
            balance.allocated -= a.quantity - a.packed
            a.packed = a.quantity
        order.version += 1
        return result

    def remove(self, ids: list[int], expected: int | None, result: Any) -> int:
        if not ids:
            raise Refused("INVALID_INPUT")
        if any(i not in self.allocations for i in ids):
            raise Refused("NOT_FOUND")
        owners = {self.allocations[i].order_id for i in ids}
        if len(owners) > 1:
            raise Refused("INVALID_INPUT")
        order = self.order_of_guard(owners.pop(), expected)
        if any(self.allocations[i].packed for i in ids):
            raise Refused("ALLOCATION_PACKED")
        assert result == order.id
        for allocation_id in set(ids):
            allocation = self.allocations.pop(allocation_id)
            self.balances[allocation.balance_id].allocated -= allocation.quantity
        order.version += 1
        return order.id

    def _open_backorder_by_id(self, backorder_id: int, expected: int | None) -> MBackorder:
        backorder = next((b for b in self.backorders if b.id == backorder_id), None)
        if backorder is None:
            raise Refused("NOT_FOUND")
        self.order_of_guard(backorder.order_id, expected)
        if backorder.status != "OPEN":
            raise Refused("BACKORDER_NOT_OPEN")
        return backorder

    def cancel(self, backorder_id: int, expected: int | None, result: Any) -> int:
        backorder = self._open_backorder_by_id(backorder_id, expected)
        assert result == backorder.order_id
        line = self.line(backorder.line_id)
        line.cancelled += backorder.remaining
        backorder.status = "CANCELLED"
        self.orders[backorder.order_id].version += 1
        return backorder.order_id

    def delete(self, backorder_id: int, expected: int | None, result: Any) -> int:
        backorder = self._open_backorder_by_id(backorder_id, expected)
        assert result == backorder.order_id
        self.backorders.remove(backorder)
        self.orders[backorder.order_id].version += 1
        return backorder.order_id

    # -- comparing -------------------------------------------------------------------------

    def learn_ids(self, s: checker.Snapshot) -> None:
        """Ids of rows the use cases do not return, found by their place."""
        for line in self.lines:
            if line.id is None:
                line.id = next(
                    (ln.id for ln in s.lines_of(line.order_id) if ln.line_number == line.number),
                    None,
                )
        known = {b.id for b in self.backorders}
        for backorder in self.backorders:
            if backorder.id is None:
                backorder.id = next(
                    (
                        b.id
                        for b in s.backorders.values()
                        if b.line_id == backorder.line_id and b.status == "OPEN"
                        and b.id not in known
                    ),
                    None,
                )  # fmt: skip

    def view(self) -> dict[str, dict[Any, tuple[Any, ...]]]:
        return {
            "balances": {b.id: (b.on_hand, b.allocated) for b in self.balances.values()},
            "adjustments": dict(self.adjustments),
            "orders": {o.id: (o.version, self.status(o.id)) for o in self.orders.values()},
            "lines": {
                ln.id: (ln.order_id, ln.number, ln.quantity, ln.cancelled) for ln in self.lines
            },
            "allocations": {
                a.id: (a.order_id, a.line_id, a.balance_id, a.quantity, a.packed)
                for a in self.allocations.values()
            },
            "backorders": {
                b.id: (b.order_id, b.line_id, b.quantity, b.allocated, b.status)
                for b in self.backorders
            },
            "packed": dict(self.packed),
        }


def _refusal(model: Callable[[Any], object], result: object) -> Refused | None:
    """What the model says to an operation: None when it carries it out."""
    try:
        model(result)
    except Refused as refused:
        return refused
    return None


def database_view(s: checker.Snapshot) -> dict[str, dict[Any, tuple[Any, ...]]]:
    return {
        "balances": {b.id: (b.on_hand, b.allocated) for b in s.balances.values()},
        "adjustments": {a.id: (a.balance_id, a.quantity) for a in s.adjustments.values()},
        "orders": {o.id: (o.version, o.status) for o in s.orders.values()},
        "lines": {
            ln.id: (ln.order_id, ln.line_number, ln.quantity, ln.quantity_cancelled)
            for ln in s.lines.values()
        },
        "allocations": {
            a.id: (a.order_id, a.line_id, a.balance_id, a.quantity, a.quantity_packed)
            for a in s.allocations.values()
        },
        "backorders": {
            b.id: (b.order_id, b.line_id, b.quantity, b.quantity_allocated, b.status)
            for b in s.backorders.values()
        },
        "packed": {p.id: (p.order_id, p.line_id, p.quantity) for p in s.packed.values()},
    }


# -- the machine -----------------------------------------------------------------------------

OUTCOMES: Counter[str] = Counter()  # "allocateOrder done", "packAllocatedOrder NOTHING_TO_PACK"
SKUS = st.sampled_from(list(SERIALIZED))
# Mostly receipts, some write-offs, now and then a zero (INVALID_QUANTITY).
QUANTITIES = st.sampled_from([*range(1, 21), *range(1, 21), *range(-6, 0), 0])
LOT = st.sampled_from(LOTS)
GUARDS = st.sampled_from(["none", "none", "current", "stale"])
LOCATION = st.sampled_from(LOCATIONS)
STRATEGIES = st.sampled_from(list(AllocationStrategy))


class AllocationMachine(RuleBasedStateMachine):
    database_url = ""  # set by the test

    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.engine = create_engine(self.database_url, pool_size=2, max_overflow=0)
        self.database = Database(self.database_url, size=2)
        self.model = Model()
        self.run(self._reset())

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.database)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coroutine)

    async def _reset(self) -> None:
        tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
        async with self.engine.begin() as conn:
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            await conn.execute(text("ALTER SEQUENCE sales_order_number_seq RESTART"))
        for sku, serialized in SERIALIZED.items():
            await catalog.create_item(self.uow, sku, sku.title(), serialized, "EA")

    def teardown(self) -> None:
        try:
            self.run(self.engine.dispose())
            self.run(self.database.close())
        finally:
            self.runner.close()

    def step(
        self,
        name: str,
        call: Callable[[], Coroutine[Any, Any, T]],
        model: Callable[[Any], object],
    ) -> T | None:
        """Run the use case and the model's operation; both refuse alike or both do it.
        OUTCOMES counts how each ended, over all examples."""
        try:
            result: T | None = self.run(call())
            error: DomainError | None = None
        except DomainError as raised:
            result, error = None, raised
        refused = _refusal(model, result)
        if error is None:
            assert refused is None, f"the server did it; the model refuses: {refused}"
            OUTCOMES[f"{name} done"] += 1
            return result
        OUTCOMES[f"{name} {error.code.value}"] += 1
        assert refused is not None, f"the server refused with {error.code}; the model would not"
        assert (error.code.value, error.current_version) == (
            refused.code,
            refused.current_version,
        )
        return None

    def guard(self, data: st.DataObject, order_id: int) -> int | None:
        """No expectedVersion half the time; else the current one or a stale one."""
        version = self.model.orders[order_id].version
        choice = data.draw(GUARDS, label="expectedVersion")
        return {"none": None, "current": version, "stale": version - 1 or 99}[choice]

    def draw_order(self, data: st.DataObject) -> int:
        return data.draw(st.sampled_from(sorted(self.model.orders)), label="order")

    # -- rules -----------------------------------------------------------------------------

    def _adjust(self, sku: str, lot: str, location: str, quantity: int) -> None:
        received, expires = self.model.lots[lot]
        change = catalog.Adjustment(
            sku,
            lot,
            location,
            quantity,
            "model",
            received_at=datetime(2026, 1, received, tzinfo=UTC),
            expires_at=datetime(2026, 6, expires, tzinfo=UTC) if expires else None,
        )
        self.step(
            "adjustInventory",
            lambda: catalog.adjust_inventory(self.uow, change),
            lambda result: self.model.adjust(sku, lot, location, quantity, result),
        )

    def _create_order(self, lines: list[tuple[str, int]]) -> None:
        inputs = [orders.LineInput(sku, quantity) for sku, quantity in lines]
        self.step(
            "createSalesOrder",
            lambda: orders.create_sales_order(self.uow, "Customer", None, inputs),
            lambda result: self.model.create_order(lines, result),
        )

    @initialize(
        dates=st.fixed_dictionaries({lot: st.tuples(RECEIVED_DAYS, EXPIRY_DAYS) for lot in LOTS}),
        picks=st.fixed_dictionaries(dict.fromkeys(LOCATIONS, PICK_SEQUENCES)),
        receipts=st.lists(st.tuples(SKUS, LOT, LOCATION, st.integers(1, 15)), max_size=4),
    )
    def warehouse(
        self,
        dates: dict[str, Dates],
        picks: dict[str, int],
        receipts: list[tuple[str, str, str, int]],
    ) -> None:
        """The lots' dates (set by their first receipt), the locations, the first stock."""
        self.model.lots, self.model.picks = dates, picks
        for code, sequence in picks.items():
            self.run(catalog.create_location(self.uow, code, code, sequence))
        for receipt in receipts:
            self._adjust(*receipt)

    # One rule that picks the operation by weight: Hypothesis would otherwise favour the
    # first rules and leave some out of whole examples (swarm testing), which a budget of
    # 20 examples cannot afford.
    @rule(data=st.data())
    def operate(self, data: st.DataObject) -> None:
        kinds = {"allocate": 24, "adjust": 12, "create": 10, "bad input": 2, "update": 10}
        if self.model.orders:
            kinds.update({"pack": 10})
        if self.model.allocations:
            kinds.update({"remove": 10})
        if any(b.id is not None for b in self.model.backorders):
            kinds.update({"cancel or delete": 14})
        if not self.model.orders:
            kinds.pop("update")
            kinds.pop("allocate")
        weighted = [kind for kind, weight in kinds.items() for _ in range(weight)]
        kind = data.draw(st.sampled_from(weighted), label="operation")
        getattr(self, kind.replace(" ", "_"))(data)

    def adjust(self, data: st.DataObject) -> None:
        self._adjust(
            data.draw(SKUS, label="sku"),
            data.draw(LOT, label="lot"),
            data.draw(LOCATION, label="location"),
            data.draw(QUANTITIES, label="quantity"),
        )

    def create(self, data: st.DataObject) -> None:
        lines = st.lists(st.tuples(SKUS, st.integers(1, 9)), min_size=1, max_size=3)
        self._create_order(data.draw(lines, label="lines"))

    def bad_input(self, data: st.DataObject) -> None:
        mistake = data.draw(
            st.sampled_from(["unknown sku", "zero quantity", "unknown item to adjust"]),
            label="mistake",
        )
        if mistake == "unknown item to adjust":
            self._adjust("NO-SUCH-SKU", "L1", "A-01", 5)
        else:
            self._create_order(
                [("BOLT", 1), ("NO-SUCH-SKU", 1) if mistake == "unknown sku" else ("NUT", 0)]
            )

    def update(self, data: st.DataObject) -> None:
        line = data.draw(st.sampled_from(self.model.lines), label="line")
        quantity = data.draw(st.integers(0, 12), label="quantity")
        assert line.id is not None
        line_id, expected = line.id, self.guard(data, line.order_id)
        self.step(
            "updateSalesOrderLine",
            lambda: orders.update_sales_order_line(self.uow, line_id, quantity, expected),
            lambda result: self.model.update_line(line_id, quantity, expected, result),
        )

    def allocate(self, data: st.DataObject) -> None:
        order_id = self.draw_order(data)
        strategy = data.draw(STRATEGIES, label="strategy")
        expected = self.guard(data, order_id)
        self.step(
            "allocateOrder",
            lambda: orders.allocate_order(self.uow, order_id, expected, strategy),
            lambda result: self.model.allocate(order_id, strategy, expected, result),
        )

    def pack(self, data: st.DataObject) -> None:
        order_id = self.draw_order(data)
        expected = self.guard(data, order_id)
        self.step(
            "packAllocatedOrder",
            lambda: orders.pack_allocated_order(self.uow, order_id, expected),
            lambda result: self.model.pack(order_id, expected, result),
        )

    def remove(self, data: st.DataObject) -> None:
        # Mostly lines of one order; now and then a packed, removed or foreign one.
        anchor = self.model.allocations[
            data.draw(st.sampled_from(sorted(self.model.allocations)), label="allocation")
        ]
        same = sorted(
            a.id for a in self.model.allocations.values() if a.order_id == anchor.order_id
        )
        ids = data.draw(st.lists(st.sampled_from(same), min_size=1, max_size=3), label="ids")
        if data.draw(st.sampled_from([False] * 6 + [True]), label="add a stranger"):
            ids.append(data.draw(st.integers(1, max(self.model.allocations) + 2), label="stranger"))
        expected = self.guard(data, anchor.order_id)
        self.step(
            "removeAllocationLines",
            lambda: orders.remove_allocation_lines(self.uow, ids, expected),
            lambda result: self.model.remove(ids, expected, result),
        )

    def cancel_or_delete(self, data: st.DataObject) -> None:
        known = sorted(b.id for b in self.model.backorders if b.id is not None)
        open_ = [b.id for b in self.model.backorders if b.id is not None and b.status == "OPEN"]
        choices = open_ if open_ and data.draw(st.sampled_from([True] * 4 + [False])) else known
        backorder_id = data.draw(st.sampled_from([*choices, max(known) + 1]), label="backorder")
        backorder = next((b for b in self.model.backorders if b.id == backorder_id), None)
        expected = self.guard(data, backorder.order_id) if backorder else None
        if data.draw(st.booleans(), label="cancel (else delete)"):
            self.step(
                "cancelBackorder",
                lambda: orders.cancel_backorder(self.uow, backorder_id, "model", expected),
                lambda result: self.model.cancel(backorder_id, expected, result),
            )
        else:
            self.step(
                "deleteBackorder",
                lambda: orders.delete_backorder(self.uow, backorder_id, expected),
                lambda result: self.model.delete(backorder_id, expected, result),
            )

    # -- after every step ------------------------------------------------------------------

    @invariant()
    def the_database_agrees_with_the_model(self) -> None:
        snapshot = self.run(checker.read_snapshot(self.engine))
        self.model.learn_ids(snapshot)
        assert checker.check(snapshot).violations == []
        assert self.run(unbalanced(self.engine)) == []  # the ledger equation
        model, database = self.model.view(), database_view(snapshot)
        for kind in model:
            assert database[kind] == model[kind], kind


def test_the_database_agrees_with_a_model_of_the_rules(database_url: str) -> None:
    AllocationMachine.database_url = database_url
    OUTCOMES.clear()
    run_state_machine_as_test(
        AllocationMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            # The short run draws the same examples every time, so what it must cover (the
            # assertions below) is covered on every run; the deep run explores afresh.
            derandomize=not DEEP,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    # Not vacuous: each operation was carried out, and refused for its commonest reasons.
    done = {name.split()[0] for name in OUTCOMES if name.endswith(" done")}
    assert done >= {
        "adjustInventory", "createSalesOrder", "updateSalesOrderLine", "allocateOrder",
        "packAllocatedOrder", "removeAllocationLines",
    }, OUTCOMES  # fmt: skip
    assert OUTCOMES["cancelBackorder done"] + OUTCOMES["deleteBackorder done"] > 0, OUTCOMES
    for refusal in ("VERSION_CONFLICT", "NOTHING_TO_PACK", "INSUFFICIENT_STOCK"):
        assert any(name.endswith(refusal) for name in OUTCOMES), (refusal, OUTCOMES)
    # Ties reached the database and the balance id decided between balances in stock: in
    # some strategy always, in every strategy when deep (a short run may miss one).
    ties = {s: OUTCOMES[f"allocateOrder {s.value} tie broken by id"] for s in AllocationStrategy}
    assert sum(ties.values()) > 0, OUTCOMES
    assert all(ties.values()) or not DEEP, ties
