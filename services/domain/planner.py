"""The allocation planner: balances and demand in, a plan out. Pure and deterministic."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum


class AllocationStrategy(StrEnum):
    FEFO = "FEFO"  # earliest expiry first, then FIFO
    FIFO = "FIFO"  # earliest receipt first, ignoring expiry
    LOCATION = "LOCATION"  # walking order of the warehouse


@dataclass(frozen=True)
class StockCandidate:
    """One lot x location balance that an allocation could draw from."""

    balance_id: int
    item_id: int
    lot_id: int
    location_id: int
    available: int
    received_at: datetime
    expires_at: datetime | None
    pick_sequence: int


@dataclass(frozen=True)
class LineDemand:
    line_id: int
    item_id: int
    open_demand: int


@dataclass(frozen=True)
class Pick:
    line_id: int
    balance_id: int
    lot_id: int
    location_id: int
    quantity: int


@dataclass(frozen=True)
class LinePlan:
    line_id: int
    picks: tuple[Pick, ...]
    shortfall: int

    @property
    def allocated(self) -> int:
        return sum(pick.quantity for pick in self.picks)


SortKey = Callable[[StockCandidate], tuple[object, ...]]

# Every key ends with balance_id so that equal candidates still come out in one order.
# Stands in for "no expiry" in the sort key; the flag before it already puts those last.
_ANY_INSTANT = datetime.min.replace(tzinfo=UTC)


def _fefo(c: StockCandidate) -> tuple[object, ...]:
    # Aware datetimes compare as instants, whatever their time zones.
    return (
        c.expires_at is None,
        c.expires_at or _ANY_INSTANT,
        c.received_at,
        c.pick_sequence,
        c.balance_id,
    )


def _fifo(c: StockCandidate) -> tuple[object, ...]:
    return (c.received_at, c.pick_sequence, c.balance_id)


def _location(c: StockCandidate) -> tuple[object, ...]:
    return (c.pick_sequence, c.received_at, c.balance_id)


SORT_KEYS: dict[AllocationStrategy, SortKey] = {
    AllocationStrategy.FEFO: _fefo,
    AllocationStrategy.FIFO: _fifo,
    AllocationStrategy.LOCATION: _location,
}


def plan_allocation(
    demand: Sequence[LineDemand],
    stock: Sequence[StockCandidate],
    strategy: AllocationStrategy = AllocationStrategy.FEFO,
) -> list[LinePlan]:
    """Reserve min(open demand, available) per line, lines in the order given.

    Lines of the same item share the item's balances: what an earlier line
    takes is no longer available to a later one.
    """
    key = SORT_KEYS[strategy]
    remaining = {c.balance_id: c.available for c in stock}
    by_item: dict[int, list[StockCandidate]] = {}
    for candidate in sorted(stock, key=key):
        by_item.setdefault(candidate.item_id, []).append(candidate)

    plans = []
    for line in demand:
        wanted = max(line.open_demand, 0)
        picks = []
        for candidate in by_item.get(line.item_id, ()):
            if wanted == 0:
                break
            take = min(wanted, remaining[candidate.balance_id])
            if take > 0:
                remaining[candidate.balance_id] -= take
                wanted -= take
                picks.append(
                    Pick(
                        line.line_id,
                        candidate.balance_id,
                        candidate.lot_id,
                        candidate.location_id,
                        take,
                    )
                )
        plans.append(LinePlan(line.line_id, tuple(picks), wanted))
    return plans
