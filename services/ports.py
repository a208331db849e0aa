"""What the use cases need from storage. `db/` implements these; tests use the real thing."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from services.domain.order import SalesOrder
from services.domain.planner import StockCandidate


class ConcurrentChange(Exception):  # noqa: N818 - a signal to retry, not a failure
    """What a write relied on changed under it (another transaction won). Retryable."""


@dataclass(frozen=True)
class ItemRecord:
    id: int
    sku: str
    serialized: bool


@dataclass(frozen=True)
class BalanceRecord:
    id: int
    on_hand: int
    allocated: int
    version: int


class CatalogRepository(Protocol):
    async def add_item(self, sku: str, name: str, serialized: bool, unit: str) -> int: ...
    async def item_by_sku(self, sku: str) -> ItemRecord | None: ...
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
    async def adjust(
        self, item_id: int, lot_id: int, location_id: int, delta: int
    ) -> BalanceRecord | None:
        """Add delta to on hand; None if that would take it below allocated."""
        ...

    async def record_adjustment(self, balance_id: int, quantity: int, reason: str) -> int: ...
    # Quantities are {balance_id: quantity}. Each raises ConcurrentChange when a
    # balance no longer has what the plan relied on.
    async def reserve(self, quantities: Mapping[int, int]) -> None: ...
    async def release(self, quantities: Mapping[int, int]) -> None: ...
    async def ship(self, quantities: Mapping[int, int]) -> None: ...


class OrderRepository(Protocol):
    async def create(self, customer: str, number: str | None) -> SalesOrder: ...
    async def get(self, order_id: int) -> SalesOrder | None: ...
    async def current_version(self, order_id: int) -> int | None: ...
    async def number_taken(self, number: str) -> bool: ...
    async def order_of_line(self, line_id: int) -> int | None: ...
    async def order_of_backorder(self, backorder_id: int) -> int | None: ...
    async def orders_of_allocations(self, allocation_ids: Collection[int]) -> dict[int, int]: ...
    async def save(self, order: SalesOrder) -> None:
        """Write the order's changes, then bump its version if it is still the
        one loaded; raises ConcurrentChange otherwise."""
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
