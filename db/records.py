"""Frozen read records: what the API shows of each row, field for field as the read
statements in db/reads.py select them (tests/db/test_statements.py checks the names).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class OrderRecord:
    id: int
    number: str
    customer: str
    status: str
    version: int
    created_at: datetime
    updated_at: datetime
    actor: str  # who created it
    updated_by: str  # who changed it last
    priority: int  # higher is filled first


@dataclass(frozen=True, slots=True)
class LineRecord:
    id: int
    order_id: int
    line_number: int
    item_id: int
    serialized: bool  # the item's: serialized lines are never allocated
    quantity: int
    quantity_cancelled: int


@dataclass(frozen=True, slots=True)
class AllocationRecord:
    """With the balance's lot and location, which an allocation line is read with."""

    id: int
    order_id: int
    line_id: int
    balance_id: int
    quantity: int
    quantity_packed: int
    created_at: datetime
    actor: str
    lot: LotRecord
    location: LocationRecord


@dataclass(frozen=True, slots=True)
class BackorderRecord:
    id: int
    order_id: int
    line_id: int
    quantity: int
    quantity_allocated: int
    status: str
    cancel_reason: str | None
    cancelled_by: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PackedLineRecord:
    id: int
    order_id: int
    line_id: int
    quantity: int
    packed_at: datetime
    actor: str
    allocation_ids: tuple[int, ...]  # the allocation lines it packed


@dataclass(frozen=True, slots=True)
class ItemRecord:
    id: int
    sku: str
    name: str
    serialized: bool
    unit: str
    on_hand: int  # summed over the item's balances
    allocated: int


@dataclass(frozen=True, slots=True)
class LotRecord:
    id: int
    item_id: int
    lot_number: str
    received_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class LocationRecord:
    id: int
    code: str
    name: str
    pick_sequence: int


@dataclass(frozen=True, slots=True)
class BalanceRecord:
    id: int
    item_id: int
    lot_id: int
    location_id: int
    on_hand: int
    allocated: int
    version: int


@dataclass(frozen=True, slots=True)
class AdjustmentRecord:
    id: int
    balance_id: int
    quantity: int
    reason: str
    created_at: datetime
    actor: str


@dataclass(frozen=True, slots=True)
class MovementRecord:
    id: int
    balance_id: int
    kind: str
    on_hand_delta: int
    allocated_delta: int
    sales_order_id: int | None
    sales_order_line_id: int | None  # None once the line is deleted
    allocation_id: int | None  # None once the allocation line is deleted
    allocation_name: str | None
    actor: str
    reason: str | None
    request_id: str | None
    created_at: datetime


@dataclass(frozen=True)
class OrderTree:
    """One order with everything of it that a unit of work loads and writes: a payload
    shows it without reading it again."""

    order: OrderRecord
    lines: tuple[LineRecord, ...]
    allocations: tuple[AllocationRecord, ...]
    backorders: tuple[BackorderRecord, ...]
    packed_lines: tuple[PackedLineRecord, ...] = ()  # only those the unit of work made


@dataclass
class Written:
    """What one unit of work wrote, as read records, and what it read on the way that a
    payload shows: the orders it loaded as they stood (a later tree of the same order is
    the one it saved), and the lot and location of each balance it chose from."""

    orders: list[OrderTree] = field(default_factory=list)
    items: list[ItemRecord] = field(default_factory=list)
    locations: list[LocationRecord] = field(default_factory=list)
    stock: dict[int, tuple[LotRecord, LocationRecord]] = field(default_factory=dict)  # by balance
    balances: list[BalanceRecord] = field(default_factory=list)
    adjustments: list[AdjustmentRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StockAtRecord:
    """One balance of an item, with its lot and location."""

    lot: LotRecord
    location: LocationRecord
    on_hand: int
    allocated: int


@dataclass(frozen=True)
class PromiseRecord:
    """What availableToPromise reads of an item, in one statement."""

    item: ItemRecord  # with its item-wide totals
    backordered: int  # still waiting on the item's OPEN backorders
    location_known: bool  # the location code asked for exists (or none was asked for)
    lot_known: bool  # the item has the lot number asked for (or none was asked for)
    balances: tuple[StockAtRecord, ...]  # narrowed by the location and lot asked for
