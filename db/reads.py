"""Read-side statements: one batch function per edge of the API's graph, returning
frozen records, and the keyset pages of the connections.

Statements are constant text with bound parameters, so asyncpg prepares each once
per connection. Reads run in autocommit: each statement sees its own snapshot under
READ COMMITTED anyway, and BEGIN/ROLLBACK would be two more round trips.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

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
    OrderTree,
    PackedLineRecord,
    PromiseRecord,
    StockAtRecord,
)

R = TypeVar("R")

_ORDER_COLUMNS = """id, number, customer, status, version, created_at, updated_at, actor,
    updated_by, priority"""
ORDER = f"SELECT {_ORDER_COLUMNS} FROM sales_orders"
_LINE_COLUMNS = (
    "l.id, l.order_id, l.line_number, l.item_id, i.serialized, l.quantity, l.quantity_cancelled"
)
_LINES = "sales_order_lines l JOIN items i ON i.id = l.item_id"
LINE = f"SELECT {_LINE_COLUMNS} FROM {_LINES}"
# An allocation line comes with its balance's lot and location: every screen that shows
# one shows where to pick it, and two statements fewer is a tenth of a read.
_ALLOCATION_COLUMNS = """a.id, a.order_id, a.line_id, a.balance_id, a.quantity, a.quantity_packed,
    a.created_at, a.actor, lot.id, lot.item_id, lot.lot_number, lot.received_at, lot.expires_at,
    loc.id, loc.code, loc.name, loc.pick_sequence"""
_ALLOCATIONS = """allocations a
JOIN inventory_balances b ON b.id = a.balance_id
JOIN lots lot ON lot.id = b.lot_id
JOIN locations loc ON loc.id = b.location_id"""
ALLOCATION = f"SELECT {_ALLOCATION_COLUMNS} FROM {_ALLOCATIONS}"
_BACKORDER_COLUMNS = """bo.id, bo.order_id, bo.line_id, bo.quantity, bo.quantity_allocated,
    bo.status, bo.cancel_reason, bo.cancelled_by, bo.created_at, bo.updated_at"""
BACKORDER = f"SELECT {_BACKORDER_COLUMNS} FROM backorders bo"
PACKED_LINE = """SELECT p.id, p.order_id, p.line_id, p.quantity, p.packed_at, p.actor,
    ARRAY(SELECT pa.allocation_id FROM packed_line_allocations pa
          WHERE pa.packed_line_id = p.id ORDER BY pa.allocation_id) AS allocation_ids
FROM packed_lines p"""
# An item comes with its totals over its balances (an index on item_id serves them).
ITEM = """SELECT t.id, t.sku, t.name, t.serialized, t.unit,
    coalesce(s.on_hand, 0) AS on_hand, coalesce(s.allocated, 0) AS allocated
FROM items t LEFT JOIN LATERAL (
    SELECT sum(b.on_hand)::int AS on_hand, sum(b.allocated)::int AS allocated
    FROM inventory_balances b WHERE b.item_id = t.id
) s ON true"""
LOT = "SELECT id, item_id, lot_number, received_at, expires_at FROM lots"
LOCATION = "SELECT id, code, name, pick_sequence FROM locations"
BALANCE = """SELECT id, item_id, lot_id, location_id, on_hand, allocated, version
FROM inventory_balances"""
ADJUSTMENT = """SELECT id, balance_id, quantity, reason, created_at, actor
FROM inventory_adjustments"""
MOVEMENT = """SELECT t.id, t.balance_id, t.kind, t.on_hand_delta, t.allocated_delta,
    t.sales_order_id, t.sales_order_line_id, t.allocation_id, t.allocation_name, t.actor,
    t.reason, t.request_id, t.created_at FROM movements t"""

ORDERS_BY_ID = f"{ORDER} WHERE id = ANY($1::bigint[])"
ORDERS_BY_NUMBER = f"{ORDER} WHERE number = ANY($1::text[])"
LINES_BY_ID = f"{LINE} WHERE l.id = ANY($1::bigint[])"
LINES_OF_ORDERS = f"{LINE} WHERE l.order_id = ANY($1::bigint[]) ORDER BY l.order_id, l.line_number"
ALLOCATIONS_BY_ID = f"{ALLOCATION} WHERE a.id = ANY($1::bigint[]) ORDER BY a.id"
ALLOCATIONS_OF_ORDERS = f"{ALLOCATION} WHERE a.order_id = ANY($1::bigint[]) ORDER BY a.id"
ALLOCATIONS_OF_LINES = f"{ALLOCATION} WHERE a.line_id = ANY($1::bigint[]) ORDER BY a.id"
BACKORDERS_BY_ID = f"{BACKORDER} WHERE bo.id = ANY($1::bigint[]) ORDER BY bo.id"
BACKORDERS_OF_ORDERS = f"{BACKORDER} WHERE bo.order_id = ANY($1::bigint[]) ORDER BY bo.id"
BACKORDERS_OF_LINES = f"{BACKORDER} WHERE line_id = ANY($1::bigint[]) ORDER BY id"
PACKED_LINES_BY_ID = f"{PACKED_LINE} WHERE p.id = ANY($1::bigint[]) ORDER BY p.id"
PACKED_LINES_OF_ORDERS = f"{PACKED_LINE} WHERE p.order_id = ANY($1::bigint[]) ORDER BY p.id"
PACKED_LINES_OF_LINES = f"{PACKED_LINE} WHERE p.line_id = ANY($1::bigint[]) ORDER BY p.id"
ITEMS_BY_ID = f"{ITEM} WHERE t.id = ANY($1::bigint[])"
ITEMS_BY_SKU = f"{ITEM} WHERE t.sku = ANY($1::text[])"
LOTS_BY_ID = f"{LOT} WHERE id = ANY($1::bigint[])"
LOCATIONS_BY_ID = f"{LOCATION} WHERE id = ANY($1::bigint[])"
LOCATIONS_BY_CODE = f"{LOCATION} WHERE code = ANY($1::text[])"
BALANCES_BY_ID = f"{BALANCE} WHERE id = ANY($1::bigint[])"
BALANCES_OF_ITEMS = f"{BALANCE} WHERE item_id = ANY($1::bigint[]) ORDER BY id"
ADJUSTMENTS_BY_ID = f"{ADJUSTMENT} WHERE id = ANY($1::bigint[])"
MOVEMENTS_BY_ID = f"{MOVEMENT} WHERE t.id = ANY($1::bigint[])"
# Orders with their lines, allocation lines and backorders, each as an array of rows, in
# the orders of LINES_OF_ORDERS, ALLOCATIONS_OF_ORDERS and BACKORDERS_OF_ORDERS: what a
# unit of work loads, in one round trip rather than four (and of one moment).
ORDER_TREES = f"""SELECT {_ORDER_COLUMNS},
    (SELECT array_agg(ROW({_LINE_COLUMNS}) ORDER BY l.line_number)
     FROM {_LINES} WHERE l.order_id = o.id) AS lines,
    (SELECT array_agg(ROW({_ALLOCATION_COLUMNS}) ORDER BY a.id)
     FROM {_ALLOCATIONS} WHERE a.order_id = o.id) AS allocations,
    (SELECT array_agg(ROW({_BACKORDER_COLUMNS}) ORDER BY bo.id)
     FROM backorders bo WHERE bo.order_id = o.id) AS backorders
FROM sales_orders o WHERE o.id = ANY($1::bigint[])"""


def allocation_record(*row: Any) -> AllocationRecord:
    """An ALLOCATION row: the allocation line's columns, its lot's, its location's."""
    allocation_id, order_id, line_id, balance_id, quantity, packed, created_at, actor = row[:8]
    return AllocationRecord(
        allocation_id, order_id, line_id, balance_id, quantity, packed, created_at, actor,
        LotRecord(*row[8:13]), LocationRecord(*row[13:17]),
    )  # fmt: skip


def packed_line_record(*row: Any) -> PackedLineRecord:
    packed_line_id, order_id, line_id, quantity, packed_at, actor, allocation_ids = row
    return PackedLineRecord(
        packed_line_id, order_id, line_id, quantity, packed_at, actor, tuple(allocation_ids)
    )


async def _records(
    session: Session, statement: str, make: Callable[..., R], keys: Sequence[object]
) -> list[R]:
    return [make(*row) for row in await session.fetch(statement, list(keys))]


async def order_trees(session: Session, ids: Sequence[int]) -> list[OrderTree]:
    """Those of the orders that exist, in no particular order."""
    return [_order_tree(*row) for row in await session.fetch(ORDER_TREES, list(ids))]


def _order_tree(*row: Any) -> OrderTree:
    *order, lines, allocations, backorders = row
    return OrderTree(
        OrderRecord(*order),
        tuple(LineRecord(*line) for line in lines or ()),
        tuple(allocation_record(*allocation) for allocation in allocations or ()),
        tuple(BackorderRecord(*backorder) for backorder in backorders or ()),
    )


async def orders_by_id(session: Session, ids: Sequence[int]) -> list[OrderRecord]:
    return await _records(session, ORDERS_BY_ID, OrderRecord, ids)


async def orders_by_number(session: Session, numbers: Sequence[str]) -> list[OrderRecord]:
    return await _records(session, ORDERS_BY_NUMBER, OrderRecord, numbers)


async def lines_by_id(session: Session, ids: Sequence[int]) -> list[LineRecord]:
    return await _records(session, LINES_BY_ID, LineRecord, ids)


async def lines_of_orders(session: Session, order_ids: Sequence[int]) -> list[LineRecord]:
    """In line-number order."""
    return await _records(session, LINES_OF_ORDERS, LineRecord, order_ids)


async def allocations_by_id(session: Session, ids: Sequence[int]) -> list[AllocationRecord]:
    return await _records(session, ALLOCATIONS_BY_ID, allocation_record, ids)


async def allocations_of_orders(
    session: Session, order_ids: Sequence[int]
) -> list[AllocationRecord]:
    return await _records(session, ALLOCATIONS_OF_ORDERS, allocation_record, order_ids)


async def allocations_of_lines(session: Session, line_ids: Sequence[int]) -> list[AllocationRecord]:
    return await _records(session, ALLOCATIONS_OF_LINES, allocation_record, line_ids)


async def backorders_by_id(session: Session, ids: Sequence[int]) -> list[BackorderRecord]:
    return await _records(session, BACKORDERS_BY_ID, BackorderRecord, ids)


async def backorders_of_orders(session: Session, order_ids: Sequence[int]) -> list[BackorderRecord]:
    return await _records(session, BACKORDERS_OF_ORDERS, BackorderRecord, order_ids)


async def backorders_of_lines(session: Session, line_ids: Sequence[int]) -> list[BackorderRecord]:
    return await _records(session, BACKORDERS_OF_LINES, BackorderRecord, line_ids)


async def packed_lines_by_id(session: Session, ids: Sequence[int]) -> list[PackedLineRecord]:
    return await _records(session, PACKED_LINES_BY_ID, packed_line_record, ids)


async def packed_lines_of_orders(
    session: Session, order_ids: Sequence[int]
) -> list[PackedLineRecord]:
    return await _records(session, PACKED_LINES_OF_ORDERS, packed_line_record, order_ids)


async def packed_lines_of_lines(
    session: Session, line_ids: Sequence[int]
) -> list[PackedLineRecord]:
    return await _records(session, PACKED_LINES_OF_LINES, packed_line_record, line_ids)


async def items_by_id(session: Session, ids: Sequence[int]) -> list[ItemRecord]:
    return await _records(session, ITEMS_BY_ID, ItemRecord, ids)


async def items_by_sku(session: Session, skus: Sequence[str]) -> list[ItemRecord]:
    return await _records(session, ITEMS_BY_SKU, ItemRecord, skus)


async def lots_by_id(session: Session, ids: Sequence[int]) -> list[LotRecord]:
    return await _records(session, LOTS_BY_ID, LotRecord, ids)


async def locations_by_id(session: Session, ids: Sequence[int]) -> list[LocationRecord]:
    return await _records(session, LOCATIONS_BY_ID, LocationRecord, ids)


async def locations_by_code(session: Session, codes: Sequence[str]) -> list[LocationRecord]:
    return await _records(session, LOCATIONS_BY_CODE, LocationRecord, codes)


async def balances_by_id(session: Session, ids: Sequence[int]) -> list[BalanceRecord]:
    return await _records(session, BALANCES_BY_ID, BalanceRecord, ids)


async def balances_of_items(session: Session, item_ids: Sequence[int]) -> list[BalanceRecord]:
    return await _records(session, BALANCES_OF_ITEMS, BalanceRecord, item_ids)


async def adjustments_by_id(session: Session, ids: Sequence[int]) -> list[AdjustmentRecord]:
    return await _records(session, ADJUSTMENTS_BY_ID, AdjustmentRecord, ids)


async def movements_by_id(session: Session, ids: Sequence[int]) -> list[MovementRecord]:
    return await _records(session, MOVEMENTS_BY_ID, MovementRecord, ids)


# -- available to promise ------------------------------------------------------------------

# The item with its totals, what its OPEN backorders still wait for (as
# services.domain.order.quantity_backordered sums it, here in SQL), whether the location
# and lot asked for exist, and one row per balance narrowed by them (or one row of nulls):
# one statement, whatever the number of balances and backorders.
AVAILABLE_TO_PROMISE = """WITH item AS (
    SELECT id, sku, name, serialized, unit FROM items WHERE sku = $1
), stock AS (
    SELECT b.lot_id, b.location_id, b.on_hand, b.allocated
    FROM inventory_balances b JOIN item ON b.item_id = item.id
)
SELECT item.id, item.sku, item.name, item.serialized, item.unit,
    (SELECT coalesce(sum(on_hand), 0)::int FROM stock) AS on_hand,
    (SELECT coalesce(sum(allocated), 0)::int FROM stock) AS allocated,
    (SELECT coalesce(sum(bo.quantity - bo.quantity_allocated), 0)::int
     FROM backorders bo JOIN sales_order_lines l ON l.id = bo.line_id
     WHERE l.item_id = item.id AND bo.status = 'OPEN') AS backordered,
    $2::text IS NULL OR EXISTS (SELECT 1 FROM locations WHERE code = $2) AS location_known,
    $3::text IS NULL OR EXISTS (
        SELECT 1 FROM lots WHERE item_id = item.id AND lot_number = $3) AS lot_known,
    lot.id, lot.item_id, lot.lot_number, lot.received_at, lot.expires_at,
    loc.id, loc.code, loc.name, loc.pick_sequence, s.on_hand, s.allocated
FROM item LEFT JOIN (
    stock s JOIN lots lot ON lot.id = s.lot_id JOIN locations loc ON loc.id = s.location_id
) ON ($2::text IS NULL OR loc.code = $2) AND ($3::text IS NULL OR lot.lot_number = $3)"""


async def available_to_promise(
    session: Session, sku: str, location_code: str | None, lot_number: str | None
) -> PromiseRecord | None:
    """None for an unknown sku."""
    rows = await session.fetch(AVAILABLE_TO_PROMISE, sku, location_code, lot_number)
    if not rows:
        return None
    first = rows[0]
    balances = tuple(
        StockAtRecord(LotRecord(*row[10:15]), LocationRecord(*row[15:19]), *row[19:21])
        for row in rows
        if row[10] is not None  # the one row of nulls when no balance is left
    )
    return PromiseRecord(
        ItemRecord(*first[:7]), first["backordered"], first["location_known"],
        first["lot_known"], balances,
    )  # fmt: skip


# -- keyset pages ------------------------------------------------------------------------


@dataclass(frozen=True)
class PageWindow:
    """Which rows a connection asks for: `size` after `after`, or (backwards) before `before`."""

    size: int
    after: int | None = None
    before: int | None = None
    backwards: bool = False
    newest_first: bool = False  # the connection's own order: by id, highest first


@dataclass(frozen=True)
class Page(Generic[R]):
    rows: list[R]
    total: int
    more: bool  # rows beyond the page in the direction read


@dataclass(frozen=True)
class Filter:
    """SQL conditions (with $n for their values, numbered from 1) and those values."""

    conditions: tuple[str, ...] = ()
    values: tuple[object, ...] = ()

    def where(self, condition: str, value: object) -> Filter:
        """Add `condition`, whose one parameter is written `$?`."""
        numbered = condition.replace("$?", f"${len(self.values) + 1}")
        return Filter((*self.conditions, numbered), (*self.values, value))

    def when(self, value: object, condition: str) -> Filter:
        """Add `condition` when value is given (not None)."""
        return self if value is None else self.where(condition, value)


@dataclass(frozen=True)
class Keyset:
    """A connection's order other than by id, for keyset pages: the sort key as columns
    of `{t}` (every part ascending, id last, so rows compare as the order goes)
    and the ORDER BY both ways. A cursor still names a row by its id; the page starts
    after (or before) that row's key as it stands now."""

    key: str
    forward: str
    backward: str

    def bound(self, table: str, op: str, parameter: int) -> str:
        row = f"(SELECT {self.key.format(t='c')} FROM {table} c WHERE c.id = ${parameter})"
        return f"({self.key.format(t='t')}) {op} {row}"


# salesOrders by PRIORITY: fillBackorders' order (services/domain/fill.py), priority
# highest first, then created, then id (the index ix_sales_orders_fill_order serves it).
BY_PRIORITY = Keyset(
    key="-{t}.priority, {t}.created_at, {t}.id",
    forward="t.priority DESC, t.created_at, t.id",
    backward="t.priority, t.created_at DESC, t.id DESC",
)


async def page(
    session: Session,
    *,
    select: str,
    table: str,
    make: Callable[..., R],
    filter: Filter,
    window: PageWindow,
    keyset: Keyset | None = None,
) -> Page[R]:
    """One page in id order, newest first, or by `keyset` (keyset: stable under
    inserts), and the total count.

    `select` selects the rows of `table` (aliased `t`); the statement text depends
    only on which filters are given, so each variant is prepared once per connection.
    """
    where = list(filter.conditions)
    values = list(filter.values)
    total = await session.fetchval(f"SELECT count(*) FROM {table} t {_where(where)}", *values)
    after, before = ("<", ">") if window.newest_first else (">", "<")
    for bound, op in ((window.after, after), (window.before, before)):
        if bound is not None:
            values.append(bound)
            where.append(
                keyset.bound(table, op, len(values)) if keyset else f"t.id {op} ${len(values)}"
            )
    values.append(window.size + 1)  # one row more than asked tells whether there is more
    # Going backwards reads the rows just before `before` the other way round, then
    # turns them.
    order = "t.id DESC" if window.newest_first != window.backwards else "t.id"
    if keyset is not None:
        order = keyset.backward if window.backwards else keyset.forward
    rows = await session.fetch(
        f"{select} {_where(where)} ORDER BY {order} LIMIT ${len(values)}", *values
    )
    records = [make(*row) for row in rows[: window.size]]
    if window.backwards:
        records.reverse()
    assert isinstance(total, int)
    return Page(records, total, len(rows) > window.size)


def _where(conditions: Sequence[str]) -> str:
    return f"WHERE {' AND '.join(conditions)}" if conditions else ""


ORDER_PAGE = f"{ORDER} t"  # `page` names the table t
ITEM_PAGE = ITEM
BACKORDER_PAGE = """SELECT t.id, t.order_id, t.line_id, t.quantity, t.quantity_allocated,
    t.status, t.cancel_reason, t.cancelled_by, t.created_at, t.updated_at FROM backorders t"""
BALANCE_PAGE = """SELECT t.id, t.item_id, t.lot_id, t.location_id, t.on_hand, t.allocated,
    t.version FROM inventory_balances t"""


def order_filter(
    status: str | None,
    customer: str | None,
    sku: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
    *,
    min_priority: int | None = None,
) -> Filter:
    return (
        Filter()
        .when(status, "t.status = $?")
        .when(min_priority, "t.priority >= $?")
        .when(customer, "t.customer = $?")
        .when(created_after, "t.created_at >= $?")
        .when(created_before, "t.created_at < $?")
        .when(
            sku,
            "EXISTS (SELECT 1 FROM sales_order_lines l JOIN items i ON i.id = l.item_id "
            "WHERE l.order_id = t.id AND i.sku = $?)",
        )
    )


def backorder_filter(status: str | None) -> Filter:
    return Filter().when(status, "t.status = $?")


def balance_filter(sku: str | None, location_code: str | None, in_stock_only: bool) -> Filter:
    found = (
        Filter()
        .when(sku, "t.item_id IN (SELECT id FROM items WHERE sku = $?)")
        .when(location_code, "t.location_id IN (SELECT id FROM locations WHERE code = $?)")
    )
    if in_stock_only:
        return Filter((*found.conditions, "t.on_hand > 0"), found.values)
    return found


def movement_filter(
    sku: str | None,
    lot_number: str | None,
    location_code: str | None,
    sales_order_id: int | None,
    kind: str | None,
) -> Filter:
    return (
        Filter()
        .when(
            sku,
            "t.balance_id IN (SELECT b.id FROM inventory_balances b JOIN items i"
            " ON i.id = b.item_id WHERE i.sku = $?)",
        )
        .when(
            lot_number,
            "t.balance_id IN (SELECT b.id FROM inventory_balances b JOIN lots l"
            " ON l.id = b.lot_id WHERE l.lot_number = $?)",
        )
        .when(
            location_code,
            "t.balance_id IN (SELECT b.id FROM inventory_balances b JOIN locations l"
            " ON l.id = b.location_id WHERE l.code = $?)",
        )
        .when(sales_order_id, "t.sales_order_id = $?")
        .when(kind, "t.kind = $?")
    )


async def movements_page(
    session: Session, filter: Filter, window: PageWindow
) -> Page[MovementRecord]:
    return await page(
        session, select=MOVEMENT, table="movements", make=MovementRecord, filter=filter,
        window=window,
    )  # fmt: skip


async def orders_page(
    session: Session, filter: Filter, window: PageWindow, *, by_priority: bool = False
) -> Page[OrderRecord]:
    return await page(
        session, select=ORDER_PAGE, table="sales_orders", make=OrderRecord, filter=filter,
        window=window, keyset=BY_PRIORITY if by_priority else None,
    )  # fmt: skip


async def items_page(session: Session, window: PageWindow) -> Page[ItemRecord]:
    return await page(
        session, select=ITEM_PAGE, table="items", make=ItemRecord, filter=Filter(), window=window
    )


async def backorders_page(
    session: Session, filter: Filter, window: PageWindow
) -> Page[BackorderRecord]:
    return await page(
        session, select=BACKORDER_PAGE, table="backorders", make=BackorderRecord, filter=filter,
        window=window,
    )  # fmt: skip


async def balances_page(
    session: Session, filter: Filter, window: PageWindow
) -> Page[BalanceRecord]:
    return await page(
        session, select=BALANCE_PAGE, table="inventory_balances", make=BalanceRecord,
        filter=filter, window=window,
    )  # fmt: skip
