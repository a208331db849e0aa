"""The sales-order aggregate: lines, allocation lines, backorders and packed lines.

Methods enforce SPEC section 4 in memory and record each change they make in
`changes`, which a repository writes out in order. Stock balances are not part
of the aggregate: their guarded updates are the use cases' job.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from services.domain.errors import (
    DomainError,
    ErrorCode,
    Subject,
    require_positive,
    version_conflict,
)
from services.domain.planner import LineDemand, LinePlan


class BackorderStatus(StrEnum):
    OPEN = "OPEN"
    ALLOCATED = "ALLOCATED"
    CANCELLED = "CANCELLED"


class OrderStatus(StrEnum):
    OPEN = "OPEN"
    PARTIALLY_ALLOCATED = "PARTIALLY_ALLOCATED"
    ALLOCATED = "ALLOCATED"
    PARTIALLY_PACKED = "PARTIALLY_PACKED"
    PACKED = "PACKED"


# An order's priority: higher is filled first (fillBackorders). A small ordinal scale, so
# that a client cannot push past every other order by an arbitrarily large number.
DEFAULT_PRIORITY = 0
MIN_PRIORITY = -1000
MAX_PRIORITY = 1000


def require_priority(priority: int) -> None:
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"Priority must be between {MIN_PRIORITY} and {MAX_PRIORITY}.",
            Subject.PRIORITY,
        )


def allocation_name(allocation_id: int) -> str:
    """How people name an allocation line: AL-000017."""
    return f"AL-{allocation_id:06d}"


def backorder_name(backorder_id: int) -> str:
    """How people name a backorder: BO-000003."""
    return f"BO-{backorder_id:06d}"


# -- derived quantities: defined here once, used by the aggregate and by the read side ----


class Reserved(Protocol):
    """An allocation line as far as a sales-order line's figures go."""

    @property
    def quantity(self) -> int: ...
    @property
    def quantity_packed(self) -> int: ...


class Awaited(Protocol):
    """A backorder as far as a sales-order line's figures go."""

    @property
    def quantity(self) -> int: ...
    @property
    def quantity_allocated(self) -> int: ...
    @property
    def status(self) -> str: ...


def quantity_allocated(allocations: Iterable[Reserved]) -> int:
    """All allocation lines, packed or not."""
    return sum(a.quantity for a in allocations)


def quantity_packed(allocations: Iterable[Reserved]) -> int:
    return sum(a.quantity_packed for a in allocations)


def quantity_backordered(backorders: Iterable[Awaited]) -> int:
    """What the line's open backorder still waits for."""
    return sum(
        b.quantity - b.quantity_allocated for b in backorders if b.status == BackorderStatus.OPEN
    )


@dataclass
class OrderLine:
    id: int | None  # None until the repository has inserted it
    line_number: int
    item_id: int
    serialized: bool
    quantity: int
    quantity_cancelled: int = 0


@dataclass
class AllocationLine:
    id: int | None
    line_id: int
    balance_id: int
    lot_id: int
    location_id: int
    quantity: int
    quantity_packed: int = 0

    @property
    def unpacked(self) -> int:
        return self.quantity - self.quantity_packed


@dataclass
class Backorder:
    id: int | None
    line_id: int
    quantity: int
    quantity_allocated: int = 0
    status: BackorderStatus = BackorderStatus.OPEN
    cancel_reason: str | None = None

    @property
    def remaining(self) -> int:
        return self.quantity - self.quantity_allocated


@dataclass
class PackedLine:
    id: int | None
    line_id: int
    quantity: int
    allocations: list[AllocationLine]


# Changes, in the order they were made. Each names the object it concerns; the
# repository fills in ids of inserted objects so payloads can return them.
@dataclass
class Inserted:
    obj: OrderLine | AllocationLine | Backorder | PackedLine


@dataclass
class Updated:
    obj: OrderLine | AllocationLine | Backorder


@dataclass
class Deleted:
    obj: OrderLine | AllocationLine | Backorder


Change = Inserted | Updated | Deleted


@dataclass
class SalesOrder:
    id: int
    version: int
    lines: list[OrderLine]
    allocations: list[AllocationLine]
    backorders: list[Backorder]
    changes: list[Change] = field(default_factory=list)
    priority: int = DEFAULT_PRIORITY  # written with every save (the order's claim)

    # -- reading ---------------------------------------------------------------

    def check_version(self, expected: int | None) -> None:
        if expected is not None and expected != self.version:
            raise version_conflict(self.version, expected)

    def line(self, line_id: int) -> OrderLine:
        for line in self.lines:
            if line.id == line_id:
                return line
        raise DomainError(ErrorCode.NOT_FOUND, "Sales order line not found.", Subject.LINE)

    def allocations_of(self, line_id: int | None) -> list[AllocationLine]:
        return [a for a in self.allocations if a.line_id == line_id]

    def allocated(self, line_id: int | None) -> int:
        return quantity_allocated(self.allocations_of(line_id))

    def packed(self, line_id: int | None) -> int:
        return quantity_packed(self.allocations_of(line_id))

    def open_backorder(self, line_id: int | None) -> Backorder | None:
        return next(
            (
                b
                for b in self.backorders
                if b.line_id == line_id and b.status is BackorderStatus.OPEN
            ),
            None,
        )

    def open_demand(self, line: OrderLine) -> int:
        return line.quantity - self.allocated(line.id) - line.quantity_cancelled

    def demand(self) -> list[LineDemand]:
        """What allocateOrder should try to reserve, serialized lines left out."""
        return [
            LineDemand(line.id, line.item_id, self.open_demand(line))
            for line in self.lines
            if line.id is not None and not line.serialized and self.open_demand(line) > 0
        ]

    def serialized_lines(self) -> list[OrderLine]:
        return [line for line in self.lines if line.serialized]

    def status(self) -> OrderStatus:
        # Serialized lines are never allocated here, so they do not hold the status back.
        wanted = sum(
            line.quantity - line.quantity_cancelled for line in self.lines if not line.serialized
        )
        allocated = quantity_allocated(self.allocations)
        packed = quantity_packed(self.allocations)
        if packed > 0:
            return OrderStatus.PACKED if packed >= wanted else OrderStatus.PARTIALLY_PACKED
        if allocated > 0:
            return OrderStatus.ALLOCATED if allocated >= wanted else OrderStatus.PARTIALLY_ALLOCATED
        return OrderStatus.OPEN

    def set_priority(self, priority: int) -> None:
        require_priority(priority)
        self.priority = priority

    # -- lines -----------------------------------------------------------------

    def add_line(self, item_id: int, serialized: bool, quantity: int) -> OrderLine:
        require_positive(quantity)
        number = max((line.line_number for line in self.lines), default=0) + 1
        line = OrderLine(None, number, item_id, serialized, quantity)
        self.lines.append(line)
        self.changes.append(Inserted(line))
        return line

    def change_line_quantity(self, line_id: int, quantity: int) -> None:
        """Lowering a line first gives up cancelled quantity, then shrinks its backorder."""
        require_positive(quantity)
        line = self.line(line_id)
        allocated = self.allocated(line_id)
        if quantity < allocated:
            raise DomainError(
                ErrorCode.QUANTITY_BELOW_ALLOCATED,
                f"Quantity {quantity} is below the {allocated} already allocated.",
                Subject.QUANTITY,
            )
        line.quantity = quantity
        line.quantity_cancelled = min(line.quantity_cancelled, quantity - allocated)
        self.changes.append(Updated(line))
        backorder = self.open_backorder(line_id)
        room = self.open_demand(line)
        if backorder is not None and backorder.remaining > room:
            self._resize(backorder, room)

    def delete_line(self, line_id: int) -> None:
        line = self.line(line_id)
        if self.allocated(line_id) > 0:
            raise DomainError(
                ErrorCode.LINE_HAS_ALLOCATIONS,
                "Remove the line's allocation lines before deleting it.",
                Subject.LINE,
            )
        for backorder in [b for b in self.backorders if b.line_id == line_id]:
            self.backorders.remove(backorder)
            self.changes.append(Deleted(backorder))
        self.lines.remove(line)
        self.changes.append(Deleted(line))

    # -- allocation --------------------------------------------------------------

    def record_allocation(self, plans: list[LinePlan]) -> list[AllocationLine]:
        created = []
        for plan in plans:
            for pick in plan.picks:
                allocation = AllocationLine(
                    None,
                    plan.line_id,
                    pick.balance_id,
                    pick.lot_id,
                    pick.location_id,
                    pick.quantity,
                )
                self.allocations.append(allocation)
                self.changes.append(Inserted(allocation))
                created.append(allocation)
            self._reconcile_backorder(plan.line_id, plan.allocated, plan.shortfall)
        return created

    def _reconcile_backorder(self, line_id: int, allocated_now: int, shortfall: int) -> None:
        """Leave the line with exactly one OPEN backorder for its shortfall, or none.

        New stock fills the open backorder first; what is still short is its
        new remaining quantity. A backorder filled completely is checked off
        (ALLOCATED) and any further shortfall starts a new one.
        """
        backorder = self.open_backorder(line_id)
        if backorder is not None:
            fill = min(allocated_now, backorder.remaining)
            if backorder.remaining > fill:
                self._resize(backorder, shortfall, filled=fill)
                return
            backorder.quantity_allocated += fill
            backorder.status = BackorderStatus.ALLOCATED
            self.changes.append(Updated(backorder))
        if shortfall > 0:
            new = Backorder(None, line_id, shortfall)
            self.backorders.append(new)
            self.changes.append(Inserted(new))

    def _resize(self, backorder: Backorder, remaining: int, filled: int = 0) -> None:
        """Record `filled` on an open backorder and set its remaining quantity. One
        that never got stock and needs none any more is dropped, one that got some
        is checked off, and one that stays as it was records no change."""
        quantity_allocated = backorder.quantity_allocated + filled
        quantity = quantity_allocated + remaining
        if (quantity, quantity_allocated) == (backorder.quantity, backorder.quantity_allocated):
            return
        backorder.quantity, backorder.quantity_allocated = quantity, quantity_allocated
        if quantity == 0:
            self.backorders.remove(backorder)
            self.changes.append(Deleted(backorder))
            return
        if remaining == 0:
            backorder.status = BackorderStatus.ALLOCATED
        self.changes.append(Updated(backorder))

    def remove_allocations(self, allocation_ids: list[int]) -> list[AllocationLine]:
        by_id = {a.id: a for a in self.allocations}
        for index, allocation_id in enumerate(allocation_ids):
            if allocation_id not in by_id:  # removed by another request meanwhile
                raise DomainError(
                    ErrorCode.NOT_FOUND, "Allocation line not found.", Subject.ALLOCATION,
                    index=index,
                )  # fmt: skip
            if by_id[allocation_id].quantity_packed > 0:
                raise DomainError(
                    ErrorCode.ALLOCATION_PACKED,
                    "An allocation line with packed quantity cannot be removed.",
                    Subject.ALLOCATION,
                    index=index,
                )
        # An id named twice removes its line once.
        removed = [by_id[i] for i in dict.fromkeys(allocation_ids)]
        for allocation in removed:
            self.allocations.remove(allocation)
            self.changes.append(Deleted(allocation))
        return removed

    # -- packing -------------------------------------------------------------------

    def pack(self) -> list[PackedLine]:
        unpacked: dict[int, list[AllocationLine]] = defaultdict(list)
        for allocation in self.allocations:
            if allocation.unpacked > 0:
                unpacked[allocation.line_id].append(allocation)
        if not unpacked:
            raise DomainError(
                ErrorCode.NOTHING_TO_PACK,
                "The order has no allocated quantity left to pack.",
                Subject.ORDER,
            )
        packed_lines = []
        for line in self.lines:
            line_id = line.id or 0  # a line not yet saved has no allocation lines: 0 finds none
            allocations = unpacked.get(line_id)
            if not allocations:
                continue
            packed = PackedLine(None, line_id, sum(a.unpacked for a in allocations), allocations)
            for allocation in allocations:
                allocation.quantity_packed = allocation.quantity
                self.changes.append(Updated(allocation))
            self.changes.append(Inserted(packed))
            packed_lines.append(packed)
        return packed_lines

    # -- backorders ----------------------------------------------------------------

    def backorder(self, backorder_id: int) -> Backorder:
        for backorder in self.backorders:
            if backorder.id == backorder_id:
                return backorder
        raise DomainError(ErrorCode.NOT_FOUND, "Backorder not found.", Subject.BACKORDER)

    def _require_open(self, backorder: Backorder) -> None:
        if backorder.status is not BackorderStatus.OPEN:
            raise DomainError(
                ErrorCode.BACKORDER_NOT_OPEN,
                f"The backorder is {backorder.status.value}, not OPEN.",
                Subject.BACKORDER,
            )

    def cancel_backorder(self, backorder_id: int, reason: str | None) -> Backorder:
        backorder = self.backorder(backorder_id)
        self._require_open(backorder)
        line = self.line(backorder.line_id)
        line.quantity_cancelled += backorder.remaining
        backorder.status = BackorderStatus.CANCELLED
        backorder.cancel_reason = reason
        self.changes.append(Updated(line))
        self.changes.append(Updated(backorder))
        return backorder

    def delete_backorder(self, backorder_id: int) -> Backorder:
        backorder = self.backorder(backorder_id)
        self._require_open(backorder)
        self.backorders.remove(backorder)
        self.changes.append(Deleted(backorder))
        return backorder
