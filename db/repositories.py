"""The unit of work and repositories that implement services.ports on PostgreSQL.

Constant statements with bound parameters on one Session per unit of work (asyncpg
prepares each once per connection). An order's changes are written in one batch
statement per kind of row and change, whatever the number of lines. What a unit of
work loads and writes is also kept as read records (`written`), so that a payload
shows it without reading it again.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self, TypeVar

from db import reads
from db.database import Database, Session
from db.errors import RACE_SQLSTATES, Unavailable, connection_lost, sqlstate
from db.records import (
    AdjustmentRecord,
    AllocationRecord,
    BackorderRecord,
    BalanceRecord,
    ItemRecord,
    LineRecord,
    LocationRecord,
    LotRecord,
    OrderRecord,
    OrderTree,
    PackedLineRecord,
    Written,
)
from services.domain.errors import DomainError, ErrorCode, Subject
from services.domain.fill import Waiting
from services.domain.order import (
    AllocationLine,
    Backorder,
    BackorderStatus,
    Change,
    Deleted,
    Inserted,
    OrderLine,
    PackedLine,
    SalesOrder,
    Updated,
    allocation_name,
)
from services.domain.planner import StockCandidate
from services.ports import CatalogItem, ConcurrentChange

log = logging.getLogger(__name__)
T = TypeVar("T")
SYSTEM = "system"  # the actor of what the server does by itself (migrations, demo data)


class _Row(Protocol):
    @property
    def id(self) -> int | None: ...


def _id(row: _Row) -> int:
    """The id of a row that is stored (the aggregate's new rows get theirs on save)."""
    assert row.id is not None, f"{row!r} is not stored yet"
    return row.id


def _of_kind(rows: Iterable[object], kind: type[T]) -> list[T]:
    return [row for row in rows if isinstance(row, kind)]


# -- the catalog -------------------------------------------------------------------------

ADD_ITEM = """INSERT INTO items (sku, name, serialized, unit) VALUES ($1, $2, $3, $4)
ON CONFLICT (sku) DO NOTHING
RETURNING id, sku, name, serialized, unit, 0 AS on_hand, 0 AS allocated"""
ITEM_BY_SKU = "SELECT id, serialized FROM items WHERE sku = $1"
ADD_LOCATION = """INSERT INTO locations (code, name, pick_sequence) VALUES ($1, $2, $3)
ON CONFLICT (code) DO NOTHING RETURNING id, code, name, pick_sequence"""
LOCATION_BY_CODE = "SELECT id FROM locations WHERE code = $1"


class SqlCatalog:
    def __init__(self, session: Session, written: Written) -> None:
        self.session, self.written = session, written

    async def add_item(self, sku: str, name: str, serialized: bool, unit: str) -> int:
        row = await self.session.fetchrow(ADD_ITEM, sku, name, serialized, unit)
        if row is None:
            raise DomainError(
                ErrorCode.DUPLICATE, f"An item with sku {sku!r} exists.", Subject.ITEM
            )
        item = ItemRecord(*row)
        self.written.items.append(item)
        return item.id

    async def item_by_sku(self, sku: str) -> CatalogItem | None:
        row = await self.session.fetchrow(ITEM_BY_SKU, sku)
        return CatalogItem(row["id"], row["serialized"]) if row else None

    async def add_location(self, code: str, name: str, pick_sequence: int) -> int:
        row = await self.session.fetchrow(ADD_LOCATION, code, name, pick_sequence)
        if row is None:
            raise DomainError(
                ErrorCode.DUPLICATE, f"A location with code {code!r} exists.", Subject.LOCATION
            )
        location = LocationRecord(*row)
        self.written.locations.append(location)
        return location.id

    async def location_id(self, code: str) -> int | None:
        found = await self.session.fetchval(LOCATION_BY_CODE, code)
        return found if isinstance(found, int) else None


# -- stock -------------------------------------------------------------------------------

# With the whole lot and location, which the allocation's payload shows.
CANDIDATES = """SELECT b.id, b.item_id, b.lot_id, b.location_id, b.on_hand - b.allocated,
    l.received_at, l.expires_at, loc.pick_sequence, l.lot_number, loc.code, loc.name
FROM inventory_balances b
JOIN lots l ON l.id = b.lot_id
JOIN locations loc ON loc.id = b.location_id
WHERE b.item_id = ANY($1::bigint[]) AND b.on_hand > b.allocated"""
ADD_LOT = """INSERT INTO lots (item_id, lot_number, received_at, expires_at)
VALUES ($1, $2, coalesce($3::timestamptz, now()), $4)
ON CONFLICT (item_id, lot_number) DO NOTHING RETURNING id"""
LOT = "SELECT id FROM lots WHERE item_id = $1 AND lot_number = $2"
ADD_BALANCE = """INSERT INTO inventory_balances (item_id, lot_id, location_id) VALUES ($1, $2, $3)
ON CONFLICT (lot_id, location_id) DO NOTHING"""
ADJUST = """UPDATE inventory_balances SET on_hand = on_hand + $3, version = version + 1
WHERE lot_id = $1 AND location_id = $2 AND on_hand + $3 >= allocated
RETURNING id, item_id, lot_id, location_id, on_hand, allocated, version"""
# The adjustment and its movement (a receipt or a write-off) in one statement.
RECORD_ADJUSTMENT = """WITH adjustment AS (
    INSERT INTO inventory_adjustments (balance_id, quantity, reason, actor)
    VALUES ($1, $2, $3, $4) RETURNING id, balance_id, quantity, reason, created_at, actor
), recorded AS (
    INSERT INTO movements (balance_id, kind, on_hand_delta, allocated_delta, actor, reason,
        request_id)
    SELECT balance_id, CASE WHEN quantity > 0 THEN 'RECEIPT' ELSE 'WRITE_OFF' END, quantity, 0,
        actor, NULLIF(reason, ''), $5
    FROM adjustment
)
SELECT * FROM adjustment"""

# One statement per stock change of a unit of work: the balances it touches change in one
# guarded update, and each allocation line moved is a movement of the ledger, in the same
# statement (so the ledger costs no round trip). The balances are locked in id order
# first, so two transactions touching the same ones never deadlock; the guard is checked
# again on the newest row version after any wait (READ COMMITTED).
_STOCK_CHANGE = """
WITH moved AS (
    SELECT * FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::bigint[], $5::text[],
                         $6::bigint[])
        AS m(balance_id, qty, line_id, allocation_id, allocation_name, order_id)
), wanted AS (
    SELECT balance_id AS id, sum(qty)::int AS qty FROM moved GROUP BY balance_id
), locked AS (
    SELECT b.id FROM inventory_balances b JOIN wanted w ON w.id = b.id
    ORDER BY b.id FOR NO KEY UPDATE OF b
), changed AS (
    UPDATE inventory_balances b SET {assignments}, version = b.version + 1
    FROM wanted w
    WHERE b.id = w.id AND b.id IN (SELECT id FROM locked) AND {guard}
    RETURNING b.id
), recorded AS (
    INSERT INTO movements (balance_id, kind, on_hand_delta, allocated_delta, sales_order_id,
        sales_order_line_id, allocation_id, allocation_name, actor, reason, request_id)
    SELECT m.balance_id, '{kind}', {on_hand}, {allocated}, m.order_id, m.line_id, m.allocation_id,
        m.allocation_name, $7, $8, $9
    FROM moved m
)
SELECT id FROM changed
"""
RESERVE = _STOCK_CHANGE.format(
    assignments="allocated = b.allocated + w.qty", guard="b.on_hand - b.allocated >= w.qty",
    kind="ALLOCATE", on_hand="0", allocated="m.qty",
)  # fmt: skip
RELEASE = _STOCK_CHANGE.format(
    assignments="allocated = b.allocated - w.qty", guard="b.allocated >= w.qty",
    kind="DEALLOCATE", on_hand="0", allocated="-m.qty",
)  # fmt: skip
SHIP = _STOCK_CHANGE.format(
    assignments="on_hand = b.on_hand - w.qty, allocated = b.allocated - w.qty",
    guard="b.allocated >= w.qty", kind="PACK", on_hand="-m.qty", allocated="-m.qty",
)  # fmt: skip


class SqlStock:
    def __init__(
        self, session: Session, written: Written, actor: str, request_id: str | None
    ) -> None:
        self.session, self.written, self.actor = session, written, actor
        self.request_id = request_id

    async def candidates(self, item_ids: Collection[int]) -> list[StockCandidate]:
        if not item_ids:
            return []
        rows = await self.session.fetch(CANDIDATES, list(item_ids))
        for row in rows:
            balance_id, item_id, lot_id, location_id, _, received, expires, sequence = row[:8]
            lot, code, name = row[8:]
            self.written.stock[balance_id] = (
                LotRecord(lot_id, item_id, lot, received, expires),
                LocationRecord(location_id, code, name, sequence),
            )
        return [StockCandidate(*row[:8]) for row in rows]

    async def lot_id(
        self,
        item_id: int,
        lot_number: str,
        received_at: datetime | None,
        expires_at: datetime | None,
    ) -> int:
        created = await self.session.fetchval(ADD_LOT, item_id, lot_number, received_at, expires_at)
        found = (
            created
            if created is not None
            else await self.session.fetchval(LOT, item_id, lot_number)
        )
        assert isinstance(found, int)
        return found

    async def adjust(self, item_id: int, lot_id: int, location_id: int, delta: int) -> int | None:
        await self.session.execute(ADD_BALANCE, item_id, lot_id, location_id)
        row = await self.session.fetchrow(ADJUST, lot_id, location_id, delta)
        if row is None:
            return None
        balance = BalanceRecord(*row)
        self.written.balances.append(balance)
        return balance.id

    async def record_adjustment(self, balance_id: int, quantity: int, reason: str) -> int:
        row = await self.session.fetchrow(
            RECORD_ADJUSTMENT, balance_id, quantity, reason, self.actor, self.request_id
        )
        assert row is not None
        adjustment = AdjustmentRecord(*row)
        self.written.adjustments.append(adjustment)
        return adjustment.id

    async def _change(
        self,
        statement: str,
        by_order: Mapping[int, Sequence[AllocationLine]],
        reason: str | None = None,
        *,
        named: bool = True,
    ) -> None:
        """Change the balances of these allocation lines (by the id of their order) by
        their quantities, and record one movement each; `named` is False for lines
        deleted in this transaction (the movement keeps their name, not a reference)."""
        moved = [(order_id, a) for order_id, lines in by_order.items() for a in lines]
        if not moved:
            return
        changed = await self.session.fetch(
            statement,
            [a.balance_id for _, a in moved],
            [a.quantity for _, a in moved],
            [a.line_id for _, a in moved],
            [_id(a) if named else None for _, a in moved],
            [allocation_name(_id(a)) for _, a in moved],
            [order_id for order_id, _ in moved],
            self.actor, reason, self.request_id,
        )  # fmt: skip
        if len(changed) != len({a.balance_id for _, a in moved}):
            raise ConcurrentChange("a balance no longer has what the plan relied on")

    async def reserve(self, by_order: Mapping[int, Sequence[AllocationLine]]) -> None:
        await self._change(RESERVE, by_order)

    async def release(
        self, order_id: int, allocations: Sequence[AllocationLine], reason: str | None
    ) -> None:
        await self._change(RELEASE, {order_id: allocations}, reason, named=False)

    async def ship(self, order_id: int, allocations: Sequence[AllocationLine]) -> None:
        await self._change(SHIP, {order_id: allocations})


# -- orders ------------------------------------------------------------------------------

NEXT_NUMBER = "SELECT nextval('sales_order_number_seq')"
NUMBER_TAKEN = "SELECT EXISTS (SELECT 1 FROM sales_orders WHERE number = $1)"
CREATE_ORDER = """INSERT INTO sales_orders (customer, number, version, actor, updated_by)
VALUES ($1, $2, 0, $3, $3)
ON CONFLICT (number) DO NOTHING
RETURNING id, number, customer, status, version, created_at, updated_at, actor, updated_by,
    priority"""
VERSION = "SELECT version FROM sales_orders WHERE id = $1"
ORDER_OF_LINE = "SELECT order_id FROM sales_order_lines WHERE id = $1"
ORDER_OF_BACKORDER = "SELECT order_id FROM backorders WHERE id = $1"
ORDERS_OF_ALLOCATIONS = "SELECT id, order_id FROM allocations WHERE id = ANY($1::bigint[])"
# The fill order of services/domain/fill.py (tests/db/test_fill_order.py holds them equal).
OPEN_BACKORDERS = """SELECT b.id, b.order_id, b.line_id, o.priority, o.created_at
FROM backorders b
JOIN sales_order_lines l ON l.id = b.line_id
JOIN sales_orders o ON o.id = b.order_id
WHERE l.item_id = $1 AND b.status = 'OPEN'
ORDER BY o.priority DESC, o.created_at, o.id, b.id
LIMIT $2"""
# The claim: a concurrent change to the order waits here, then fails the version check,
# before it has written anything or locked any balance.
CLAIM = """UPDATE sales_orders SET version = version + 1, status = $3, updated_at = now(),
    updated_by = $4, priority = $5
WHERE id = $1 AND version = $2 RETURNING version, updated_at"""
INSERT_LINES = """INSERT INTO sales_order_lines (order_id, line_number, item_id, quantity)
SELECT $1, * FROM unnest($2::int[], $3::bigint[], $4::int[]) RETURNING id, line_number"""
UPDATE_LINES = """UPDATE sales_order_lines l SET quantity = u.quantity,
    quantity_cancelled = u.cancelled
FROM unnest($1::bigint[], $2::int[], $3::int[]) AS u(id, quantity, cancelled)
WHERE l.id = u.id"""
DELETE_LINES = "DELETE FROM sales_order_lines WHERE id = ANY($1::bigint[])"
INSERT_ALLOCATIONS = """INSERT INTO allocations (order_id, actor, line_id, balance_id, quantity)
SELECT $1, $2, * FROM unnest($3::bigint[], $4::bigint[], $5::int[])
RETURNING id, line_id, balance_id"""
UPDATE_ALLOCATIONS = """UPDATE allocations a SET quantity_packed = u.packed
FROM unnest($1::bigint[], $2::int[]) AS u(id, packed) WHERE a.id = u.id"""
DELETE_ALLOCATIONS = "DELETE FROM allocations WHERE id = ANY($1::bigint[])"
INSERT_BACKORDERS = """INSERT INTO backorders (order_id, line_id, quantity)
SELECT $1, * FROM unnest($2::bigint[], $3::int[]) RETURNING id, line_id"""
UPDATE_BACKORDERS = """UPDATE backorders b SET quantity = u.quantity,
    quantity_allocated = u.allocated, status = u.status, cancel_reason = u.reason,
    cancelled_by = CASE WHEN u.status = 'CANCELLED' AND b.status <> 'CANCELLED' THEN $6
                        ELSE b.cancelled_by END,
    updated_at = now()
FROM unnest($1::bigint[], $2::int[], $3::int[], $4::text[], $5::text[])
    AS u(id, quantity, allocated, status, reason)
WHERE b.id = u.id"""
DELETE_BACKORDERS = "DELETE FROM backorders WHERE id = ANY($1::bigint[])"
INSERT_PACKED_LINES = """INSERT INTO packed_lines (order_id, actor, line_id, quantity)
SELECT $1, $2, * FROM unnest($3::bigint[], $4::int[]) RETURNING id, line_id"""
INSERT_PACKED_ALLOCATIONS = """INSERT INTO packed_line_allocations
    (packed_line_id, allocation_id, quantity)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::int[])"""


@dataclass
class _Net:
    """An order's changes as they end: what to insert, update and delete, by kind."""

    inserted: dict[int, OrderLine | AllocationLine | Backorder | PackedLine] = field(
        default_factory=dict
    )
    updated: dict[int, OrderLine | AllocationLine | Backorder] = field(default_factory=dict)
    deleted: dict[int, OrderLine | AllocationLine | Backorder] = field(default_factory=dict)

    @classmethod
    def of(cls, changes: Iterable[Change]) -> _Net:
        net = cls()
        for change in changes:
            key = id(change.obj)
            match change:
                case Inserted(obj):
                    net.inserted[key] = obj
                case Updated(obj) if key not in net.inserted:
                    net.updated[key] = obj
                case Deleted(obj):
                    net.updated.pop(key, None)
                    if net.inserted.pop(key, None) is None:
                        net.deleted[key] = obj
        return net


class SqlOrders:
    def __init__(self, session: Session, written: Written, actor: str) -> None:
        self.session, self.written, self.actor = session, written, actor
        self.loaded: dict[int, OrderTree] = {}
        # The order's version as last seen, for a conflict report if retries run out.
        self.version_seen: int | None = None

    async def create(self, customer: str, number: str | None) -> SalesOrder:
        row = await self.session.fetchrow(
            CREATE_ORDER, customer, number or await self._free_number(), self.actor
        )
        if row is None:
            raise DomainError(
                ErrorCode.DUPLICATE, f"Sales order {number!r} exists.", Subject.ORDER_NUMBER
            )
        record = OrderRecord(*row)
        self.loaded[record.id] = OrderTree(record, (), (), ())
        return SalesOrder(record.id, record.version, [], [], [], priority=record.priority)

    async def _free_number(self) -> str:
        """The next SO-nnnnnn that no client has taken for an order of its own."""
        while True:
            number = f"SO-{await self.session.fetchval(NEXT_NUMBER):06d}"
            if not await self.number_taken(number):
                return number

    async def number_taken(self, number: str) -> bool:
        return bool(await self.session.fetchval(NUMBER_TAKEN, number))

    async def get(self, order_id: int) -> SalesOrder | None:
        found = await self.get_many([order_id])
        return found[0] if found else None

    async def get_many(self, order_ids: Sequence[int]) -> list[SalesOrder]:
        """Those that exist, in the order asked, in one statement however many (a fill
        loads every order it may touch)."""
        trees = {t.order.id: t for t in await reads.order_trees(self.session, order_ids)}
        orders = []
        for tree in (trees[i] for i in order_ids if i in trees):
            self.loaded[tree.order.id] = tree
            self.written.orders.append(tree)  # as it stands, unless save() writes it anew
            self.version_seen = tree.order.version
            orders.append(_aggregate(tree))
        return orders

    async def current_version(self, order_id: int) -> int | None:
        found = await self.session.fetchval(VERSION, order_id)
        return found if isinstance(found, int) else None

    async def order_of_line(self, line_id: int) -> int | None:
        found = await self.session.fetchval(ORDER_OF_LINE, line_id)
        return found if isinstance(found, int) else None

    async def order_of_backorder(self, backorder_id: int) -> int | None:
        found = await self.session.fetchval(ORDER_OF_BACKORDER, backorder_id)
        return found if isinstance(found, int) else None

    async def orders_of_allocations(self, allocation_ids: Collection[int]) -> dict[int, int]:
        rows = await self.session.fetch(ORDERS_OF_ALLOCATIONS, list(allocation_ids))
        return {row["id"]: row["order_id"] for row in rows}

    async def open_backorders(self, item_id: int, limit: int) -> list[Waiting]:
        return [Waiting(*row) for row in await self.session.fetch(OPEN_BACKORDERS, item_id, limit)]

    async def save(self, order: SalesOrder) -> None:
        """Claim the order (its version must still be the one loaded), then write its
        changes; raises ConcurrentChange when another change came first."""
        stamp = await self._claim(order)
        net = _Net.of(order.changes)
        await self._delete(net)
        await self._update(net)
        await self._insert(order.id, net)
        self.written.orders.append(self._tree(order, stamp, net))
        order.changes.clear()

    async def _claim(self, order: SalesOrder) -> datetime:
        row = await self.session.fetchrow(
            CLAIM, order.id, order.version, order.status().value, self.actor, order.priority
        )
        if row is None:
            self.version_seen = await self.current_version(order.id)
            raise ConcurrentChange(f"sales order {order.id} changed under us")
        order.version = self.version_seen = row["version"]
        updated_at = row["updated_at"]
        assert isinstance(updated_at, datetime)
        return updated_at  # now(): every row this transaction writes has this time

    async def _delete(self, net: _Net) -> None:
        # Children before the lines they belong to.
        deleted = net.deleted.values()
        for statement, ids in (
            (DELETE_ALLOCATIONS, [_id(a) for a in _of_kind(deleted, AllocationLine)]),
            (DELETE_BACKORDERS, [_id(b) for b in _of_kind(deleted, Backorder)]),
            (DELETE_LINES, [_id(line) for line in _of_kind(deleted, OrderLine)]),
        ):
            if ids:
                await self.session.execute(statement, ids)

    async def _update(self, net: _Net) -> None:
        if lines := _of_kind(net.updated.values(), OrderLine):
            await self.session.execute(
                UPDATE_LINES,
                [line.id for line in lines],
                [line.quantity for line in lines],
                [line.quantity_cancelled for line in lines],
            )
        if allocations := _of_kind(net.updated.values(), AllocationLine):
            await self.session.execute(
                UPDATE_ALLOCATIONS,
                [a.id for a in allocations],
                [a.quantity_packed for a in allocations],
            )
        # Before any insert: a backorder checked off makes room for a new OPEN one.
        if backorders := _of_kind(net.updated.values(), Backorder):
            await self.session.execute(
                UPDATE_BACKORDERS,
                [b.id for b in backorders],
                [b.quantity for b in backorders],
                [b.quantity_allocated for b in backorders],
                [b.status.value for b in backorders],
                [b.cancel_reason for b in backorders],
                self.actor,
            )

    async def _insert(self, order_id: int, net: _Net) -> None:
        new = net.inserted.values()
        if lines := _of_kind(new, OrderLine):
            rows = await self.session.fetch(
                INSERT_LINES,
                order_id,
                [line.line_number for line in lines],
                [line.item_id for line in lines],
                [line.quantity for line in lines],
            )
            by_number = {row["line_number"]: row["id"] for row in rows}
            for line in lines:
                line.id = by_number[line.line_number]
        if allocations := _of_kind(new, AllocationLine):
            rows = await self.session.fetch(
                INSERT_ALLOCATIONS,
                order_id,
                self.actor,
                [a.line_id for a in allocations],
                [a.balance_id for a in allocations],
                [a.quantity for a in allocations],
            )
            # A plan takes each balance at most once per line.
            by_pick = {(row["line_id"], row["balance_id"]): row["id"] for row in rows}
            for allocation in allocations:
                allocation.id = by_pick[allocation.line_id, allocation.balance_id]
        if backorders := _of_kind(new, Backorder):
            rows = await self.session.fetch(
                INSERT_BACKORDERS,
                order_id,
                [b.line_id for b in backorders],
                [b.quantity for b in backorders],
            )
            by_line = {row["line_id"]: row["id"] for row in rows}  # one new per line at most
            for backorder in backorders:
                backorder.id = by_line[backorder.line_id]
        if packed := _of_kind(new, PackedLine):
            await self._insert_packed(order_id, packed)

    async def _insert_packed(self, order_id: int, packed: list[PackedLine]) -> None:
        rows = await self.session.fetch(
            INSERT_PACKED_LINES,
            order_id,
            self.actor,
            [p.line_id for p in packed],
            [p.quantity for p in packed],
        )
        by_line = {row["line_id"]: row["id"] for row in rows}  # one per line per packing
        links: list[tuple[int, int, int]] = []
        for packed_line in packed:
            packed_line.id = by_line[packed_line.line_id]
            links += [(packed_line.id, _id(a), a.quantity) for a in packed_line.allocations]
        await self.session.execute(
            INSERT_PACKED_ALLOCATIONS, *(list(column) for column in zip(*links, strict=True))
        )

    def _new_allocation(
        self, order_id: int, a: AllocationLine, stamp: datetime
    ) -> AllocationRecord:
        """An allocation line this unit of work made, from a balance it chose from."""
        lot, location = self.written.stock[a.balance_id]
        return AllocationRecord(
            _id(a), order_id, a.line_id, a.balance_id, a.quantity, a.quantity_packed, stamp,
            self.actor, lot, location,
        )  # fmt: skip

    def _tree(self, order: SalesOrder, stamp: datetime, net: _Net) -> OrderTree:
        """The order's records after save(): as loaded where unchanged, with the
        transaction's time on what this unit of work wrote."""
        loaded = self.loaded[order.id]
        lines = {r.id: r for r in loaded.lines}
        allocations = {r.id: r for r in loaded.allocations}
        backorders = {r.id: r for r in loaded.backorders}
        allocation_records = [
            allocations.get(_id(a)) or self._new_allocation(order.id, a, stamp)
            for a in order.allocations
        ]
        packed = [p for p in net.inserted.values() if isinstance(p, PackedLine)]
        return OrderTree(
            replace(loaded.order, version=order.version, status=order.status().value,
                    updated_at=stamp, updated_by=self.actor, priority=order.priority),
            tuple(_line_record(order.id, line, lines.get(_id(line))) for line in order.lines),
            tuple(
                replace(record, quantity_packed=a.quantity_packed)
                for record, a in zip(allocation_records, order.allocations, strict=True)
            ),
            tuple(
                _backorder_record(order.id, b, backorders.get(_id(b)), stamp, self.actor)
                for b in order.backorders
            ),
            tuple(
                PackedLineRecord(
                    _id(p), order.id, p.line_id, p.quantity, stamp, self.actor,
                    tuple(_id(a) for a in p.allocations),
                )
                for p in packed
            ),
        )  # fmt: skip


def _aggregate(tree: OrderTree) -> SalesOrder:
    return SalesOrder(
        tree.order.id,
        tree.order.version,
        [
            OrderLine(r.id, r.line_number, r.item_id, r.serialized, r.quantity,
                      r.quantity_cancelled)
            for r in tree.lines
        ],
        [
            AllocationLine(r.id, r.line_id, r.balance_id, r.lot.id, r.location.id, r.quantity,
                           r.quantity_packed)
            for r in tree.allocations
        ],
        [
            Backorder(r.id, r.line_id, r.quantity, r.quantity_allocated,
                      BackorderStatus(r.status), r.cancel_reason)
            for r in tree.backorders
        ],
        priority=tree.order.priority,
    )  # fmt: skip


def _line_record(order_id: int, line: OrderLine, loaded: LineRecord | None) -> LineRecord:
    if loaded is not None:
        return replace(loaded, quantity=line.quantity, quantity_cancelled=line.quantity_cancelled)
    return LineRecord(
        _id(line), order_id, line.line_number, line.item_id, line.serialized, line.quantity,
        line.quantity_cancelled,
    )  # fmt: skip


def _backorder_record(
    order_id: int, b: Backorder, loaded: BackorderRecord | None, stamp: datetime, actor: str
) -> BackorderRecord:
    now = (b.quantity, b.quantity_allocated, b.status.value, b.cancel_reason)
    if loaded is None:
        return BackorderRecord(_id(b), order_id, b.line_id, *now, None, stamp, stamp)
    if now == (loaded.quantity, loaded.quantity_allocated, loaded.status, loaded.cancel_reason):
        return loaded
    cancelled = b.status is BackorderStatus.CANCELLED and loaded.status != b.status.value
    return replace(
        loaded, quantity=b.quantity, quantity_allocated=b.quantity_allocated,
        status=b.status.value, cancel_reason=b.cancel_reason, updated_at=stamp,
        cancelled_by=actor if cancelled else loaded.cancelled_by,
    )  # fmt: skip


class SqlUnitOfWork:
    """One transaction on a session: rolls back unless commit() was called. Inside a
    transaction already open on the session it is a savepoint.

    Given a Session, it borrows it (a request's); given the Database, it takes a
    session of its own and gives it back when it ends. Every row it writes names `actor`.
    """

    read_only = False  # SnapshotUnitOfWork's: reads in one snapshot, writes refused

    def __init__(
        self, source: Session | Database, actor: str = SYSTEM, request_id: str | None = None
    ) -> None:
        self._source = source
        self.actor, self.request_id = actor, request_id
        self.written = Written()

    async def __aenter__(self) -> Self:
        self.session = self._source if isinstance(self._source, Session) else self._source.session()
        self.written = Written()
        self.catalog = SqlCatalog(self.session, self.written)
        self.stock = SqlStock(self.session, self.written, self.actor, self.request_id)
        self.orders = SqlOrders(self.session, self.written, self.actor)
        self._committed = False
        try:
            await self.session.begin(read_only=self.read_only)
        except BaseException:
            await self._end()
            raise
        return self

    async def commit(self) -> None:
        await self.session.commit()
        self._committed = True

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self._committed:
                await self.session.rollback()
        except Exception:
            # Nothing uncommitted survives a broken connection, so a failed rollback
            # cannot leave writes behind: report what the unit of work itself ended with.
            log.warning("rollback failed; the connection is dropped", exc_info=True)
        finally:
            await self._end()
        if exc is not None and sqlstate(exc) in RACE_SQLSTATES:
            raise ConcurrentChange(str(sqlstate(exc)), self.orders.version_seen) from exc
        if isinstance(exc, ConcurrentChange) and exc.current_version is None:
            exc.current_version = self.orders.version_seen
        if exc is not None and not isinstance(exc, Unavailable) and connection_lost(exc):
            raise Unavailable() from exc

    async def _end(self) -> None:
        if not isinstance(self._source, Session):
            await self.session.close()


class SnapshotUnitOfWork(SqlUnitOfWork):
    """A unit of work for a use case that only reads (a preview): one REPEATABLE READ,
    READ ONLY transaction, so all it reads is of one moment, the database refuses any
    write, and it takes no row lock. It is never committed; it ends in a rollback."""

    read_only = True

    async def commit(self) -> None:
        raise AssertionError("a snapshot unit of work is never committed")
