"""What the use cases need from storage. `db/` implements these; tests use the real thing."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from services.domain.fill import Waiting
from services.domain.order import AllocationLine, SalesOrder
from services.domain.planner import StockCandidate


class ConcurrentChange(Exception):  # noqa: N818 - a signal to retry, not a failure
    """What a write relied on changed under it (another transaction won). Retryable.

    current_version: the order's version as last seen, for the VERSION_CONFLICT a
    client gets when the retries run out."""

    def __init__(self, reason: str, current_version: int | None = None) -> None:
        super().__init__(reason)
        self.current_version = current_version


@dataclass(frozen=True)
class CatalogItem:
    """What a use case needs of an item."""

    id: int
    serialized: bool


class CatalogRepository(Protocol):
    async def add_item(self, sku: str, name: str, serialized: bool, unit: str) -> int: ...
    async def item_by_sku(self, sku: str) -> CatalogItem | None: ...
    async def add_location(self, code: str, name: str, pick_sequence: int) -> int: ...
    async def location_id(self, code: str) -> int | None: ...


class StockRepository(Protocol):
    async def candidates(self, item_ids: Collection[int]) -> list[StockCandidate]: ...
    async def lot_id(
        self,
        item_id: int,
        lot_number: str,
        received_at: datetime | None,
        expires_at: datetime | None,
    ) -> int: ...
    async def adjust(self, item_id: int, lot_id: int, location_id: int, delta: int) -> int | None:
        """Add delta to on hand and give the balance's id; None if that would take on
        hand below allocated."""
        ...

    async def record_adjustment(self, balance_id: int, quantity: int, reason: str) -> int:
        """The adjustment, and its receipt or write-off on the ledger."""
        ...

    # Each changes the balances of the order's allocation lines by their quantities and
    # puts one movement per allocation line on the ledger (ALLOCATE, DEALLOCATE, PACK).
    # Each raises ConcurrentChange when a balance no longer has what the plan relied on.
    async def reserve(self, by_order: Mapping[int, Sequence[AllocationLine]]) -> None:
        """The allocation lines just made, by the id of the order each is for, in one
        change: a fill that takes from one balance for several orders changes it once."""
        ...

    async def release(
        self, order_id: int, allocations: Sequence[AllocationLine], reason: str | None
    ) -> None:
        """For allocation lines that the order's save has just deleted."""
        ...

    async def ship(self, order_id: int, allocations: Sequence[AllocationLine]) -> None: ...


class OrderRepository(Protocol):
    async def create(self, customer: str, number: str | None) -> SalesOrder: ...
    async def get(self, order_id: int) -> SalesOrder | None: ...
    async def get_many(self, order_ids: Sequence[int]) -> list[SalesOrder]:
        """Those of the orders that exist, in the order asked."""
        ...

    async def current_version(self, order_id: int) -> int | None: ...
    async def number_taken(self, number: str) -> bool: ...
    async def order_of_line(self, line_id: int) -> int | None: ...
    async def order_of_backorder(self, backorder_id: int) -> int | None: ...
    async def orders_of_allocations(self, allocation_ids: Collection[int]) -> dict[int, int]: ...
    async def open_backorders(self, item_id: int, limit: int) -> list[Waiting]:
        """The item's OPEN backorders, the first `limit` in fill order."""
        ...

    async def save(self, order: SalesOrder) -> None:
        """Claim the order (bump its version if it is still the one loaded, else raise
        ConcurrentChange), then write its changes. A use case saves the order before it
        changes stock, so a loser learns it lost before it locks any balance."""
        ...


class UnitOfWork(Protocol):
    @property
    def catalog(self) -> CatalogRepository: ...
    @property
    def stock(self) -> StockRepository: ...
    @property
    def orders(self) -> OrderRepository: ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Rolls back unless commit() was called."""
        ...

    async def commit(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
