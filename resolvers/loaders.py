"""Per-request loaders, one named and typed loader per edge of the graph: each keeps
what it has read for the rest of the request and reads only the keys it has not seen,
in one statement per call. The builder calls each once per level, so a nested field
costs one statement whatever the number of parents.

Rows read by one key are primed into the loader by id of their kind, so a child asking
for its parent (an allocation line for its order line) costs no statement, and what a
mutation's unit of work wrote is primed before its payload is built (`prime`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from functools import cached_property
from typing import Generic, Protocol, TypeVar

from db import reads
from db.database import Session
from db.records import (
    AdjustmentRecord,
    AllocationRecord,
    BackorderRecord,
    BalanceRecord,
    ItemRecord,
    LineRecord,
    LocationRecord,
    LotRecord,
    MovementRecord,
    OrderRecord,
    PackedLineRecord,
    Written,
)

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")
V = TypeVar("V")


class Stored(Protocol):
    """A record of a row with an id."""

    @property
    def id(self) -> int: ...


S = TypeVar("S", bound=Stored)
Fetch = Callable[[Session, Sequence[K]], Awaitable[list[R]]]


class Loader(Generic[K, R, V]):
    """Values by key: `value_of` reduces the rows read for one key (a list, in the
    order the statement gives them) to the value callers get."""

    def __init__(
        self,
        session: Session,
        fetch: Fetch[K, R],
        key_of: Callable[[R], K],
        value_of: Callable[[list[R]], V],
        then: Callable[[list[R]], None] | None = None,
    ) -> None:
        self._session, self._fetch, self._key_of, self._value_of = (
            session, fetch, key_of, value_of
        )  # fmt: skip
        self._then = then
        self._known: dict[K, V] = {}

    async def load(self, keys: Iterable[K]) -> Mapping[K, V]:
        """Every key asked for, with its value (what value_of makes of no rows for a key
        that has none)."""
        keys = list(dict.fromkeys(keys))
        missing = [key for key in keys if key not in self._known]
        if missing:
            rows = await self._fetch(self._session, missing)
            found: dict[K, list[R]] = {key: [] for key in missing}
            for row in rows:
                found[self._key_of(row)].append(row)
            for key, group in found.items():
                self._known[key] = self._value_of(group)
            if self._then is not None:
                self._then(rows)
        return {key: self._known[key] for key in keys}

    def prime(self, key: K, value: V) -> None:
        self._known[key] = value


def _first(rows: list[R]) -> R | None:
    return rows[0] if rows else None


def _all(rows: list[R]) -> tuple[R, ...]:
    return tuple(rows)


class ById(Loader[int, S, S | None]):
    """Rows by id; None for an id that names nothing."""

    def __init__(
        self,
        session: Session,
        fetch: Fetch[int, S],
        then: Callable[[list[S]], None] | None = None,
    ) -> None:
        super().__init__(session, fetch, lambda row: row.id, _first, then)

    def remember(self, rows: Iterable[S]) -> None:
        for row in rows:
            self.prime(row.id, row)


class Grouped(Loader[int, R, tuple[R, ...]]):
    """The rows that belong to each key (a parent's id), primed by id as well."""

    def __init__(
        self,
        session: Session,
        fetch: Fetch[int, R],
        parent_of: Callable[[R], int],
        then: Callable[[list[R]], None] | None = None,
    ) -> None:
        super().__init__(session, fetch, parent_of, _all, then)


class Loaders:
    """The request's loaders, named by edge; each made on first use."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @cached_property
    def order_by_id(self) -> ById[OrderRecord]:
        return ById(self.session, reads.orders_by_id)

    @cached_property
    def order_by_number(self) -> Loader[str, OrderRecord, OrderRecord | None]:
        return Loader(
            self.session, reads.orders_by_number, lambda o: o.number, _first,
            self.order_by_id.remember,
        )  # fmt: skip

    @cached_property
    def line_by_id(self) -> ById[LineRecord]:
        return ById(self.session, reads.lines_by_id)

    @cached_property
    def lines_by_order_id(self) -> Grouped[LineRecord]:
        return Grouped(
            self.session, reads.lines_of_orders, lambda line: line.order_id,
            self.line_by_id.remember,
        )  # fmt: skip

    def remember_allocations(self, allocations: Iterable[AllocationRecord]) -> None:
        """Allocation lines by id, and the lots and locations they came with."""
        for allocation in allocations:
            self.allocation_by_id.prime(allocation.id, allocation)
            self.lot_by_id.prime(allocation.lot.id, allocation.lot)
            self.location_by_id.prime(allocation.location.id, allocation.location)

    @cached_property
    def allocation_by_id(self) -> ById[AllocationRecord]:
        return ById(self.session, reads.allocations_by_id, self.remember_allocations)

    @cached_property
    def allocations_by_order_id(self) -> Grouped[AllocationRecord]:
        return Grouped(
            self.session, reads.allocations_of_orders, lambda a: a.order_id,
            self.remember_allocations,
        )  # fmt: skip

    @cached_property
    def allocations_by_line_id(self) -> Grouped[AllocationRecord]:
        return Grouped(
            self.session, reads.allocations_of_lines, lambda a: a.line_id,
            self.remember_allocations,
        )  # fmt: skip

    @cached_property
    def backorder_by_id(self) -> ById[BackorderRecord]:
        return ById(self.session, reads.backorders_by_id)

    @cached_property
    def backorders_by_order_id(self) -> Grouped[BackorderRecord]:
        return Grouped(
            self.session, reads.backorders_of_orders, lambda b: b.order_id,
            self.backorder_by_id.remember,
        )  # fmt: skip

    @cached_property
    def backorders_by_line_id(self) -> Grouped[BackorderRecord]:
        return Grouped(
            self.session, reads.backorders_of_lines, lambda b: b.line_id,
            self.backorder_by_id.remember,
        )  # fmt: skip

    @cached_property
    def packed_line_by_id(self) -> ById[PackedLineRecord]:
        return ById(self.session, reads.packed_lines_by_id)

    @cached_property
    def packed_lines_by_order_id(self) -> Grouped[PackedLineRecord]:
        return Grouped(
            self.session, reads.packed_lines_of_orders, lambda p: p.order_id,
            self.packed_line_by_id.remember,
        )  # fmt: skip

    @cached_property
    def packed_lines_by_line_id(self) -> Grouped[PackedLineRecord]:
        return Grouped(
            self.session, reads.packed_lines_of_lines, lambda p: p.line_id,
            self.packed_line_by_id.remember,
        )  # fmt: skip

    @cached_property
    def item_by_id(self) -> ById[ItemRecord]:
        return ById(self.session, reads.items_by_id)

    @cached_property
    def item_by_sku(self) -> Loader[str, ItemRecord, ItemRecord | None]:
        return Loader(
            self.session, reads.items_by_sku, lambda i: i.sku, _first, self.item_by_id.remember
        )

    @cached_property
    def lot_by_id(self) -> ById[LotRecord]:
        return ById(self.session, reads.lots_by_id)

    @cached_property
    def location_by_id(self) -> ById[LocationRecord]:
        return ById(self.session, reads.locations_by_id)

    @cached_property
    def location_by_code(self) -> Loader[str, LocationRecord, LocationRecord | None]:
        return Loader(
            self.session, reads.locations_by_code, lambda loc: loc.code, _first,
            self.location_by_id.remember,
        )  # fmt: skip

    @cached_property
    def balance_by_id(self) -> ById[BalanceRecord]:
        return ById(self.session, reads.balances_by_id)

    @cached_property
    def balances_by_item_id(self) -> Grouped[BalanceRecord]:
        return Grouped(
            self.session, reads.balances_of_items, lambda b: b.item_id,
            self.balance_by_id.remember,
        )  # fmt: skip

    @cached_property
    def adjustment_by_id(self) -> ById[AdjustmentRecord]:
        return ById(self.session, reads.adjustments_by_id)

    @cached_property
    def movement_by_id(self) -> ById[MovementRecord]:
        return ById(self.session, reads.movements_by_id)

    def prime(self, written: Written) -> None:
        """What a unit of work wrote, as its payload will show it. An order's lines,
        allocation lines and backorders are whole (the unit of work loaded them all);
        its packed lines are only those it made, so they prime by id alone."""
        latest = {tree.order.id: tree for tree in written.orders}  # as saved, if it was
        for tree in latest.values():
            order_id = tree.order.id
            self.order_by_id.prime(order_id, tree.order)
            self.lines_by_order_id.prime(order_id, tree.lines)
            self.allocations_by_order_id.prime(order_id, tree.allocations)
            self.backorders_by_order_id.prime(order_id, tree.backorders)
            self.line_by_id.remember(tree.lines)
            self.remember_allocations(tree.allocations)
            self.backorder_by_id.remember(tree.backorders)
            allocations: dict[int, list[AllocationRecord]] = defaultdict(list)
            backorders: dict[int, list[BackorderRecord]] = defaultdict(list)
            for allocation in tree.allocations:
                allocations[allocation.line_id].append(allocation)
            for backorder in tree.backorders:
                backorders[backorder.line_id].append(backorder)
            for line in tree.lines:
                self.allocations_by_line_id.prime(line.id, tuple(allocations[line.id]))
                self.backorders_by_line_id.prime(line.id, tuple(backorders[line.id]))
            self.packed_line_by_id.remember(tree.packed_lines)
        self.item_by_id.remember(written.items)
        self.location_by_id.remember(written.locations)
        for lot, location in written.stock.values():
            self.lot_by_id.prime(lot.id, lot)
            self.location_by_id.prime(location.id, location)
        self.balance_by_id.remember(written.balances)
        self.adjustment_by_id.remember(written.adjustments)
