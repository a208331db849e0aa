"""Use cases that change a sales order. Each is load, decide, write, commit, in a retry loop."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from services.domain.errors import DomainError, ErrorCode, Subject, not_found, version_conflict
from services.domain.order import AllocationLine, PackedLine, SalesOrder
from services.domain.planner import AllocationStrategy, plan_allocation
from services.ports import UnitOfWork, UnitOfWorkFactory
from services.retry import retrying

T = TypeVar("T")

MAX_LINES = 500  # a bound on one request's work; larger orders are split by the client


@dataclass(frozen=True)
class LineInput:
    sku: str
    quantity: int


@dataclass(frozen=True)
class AllocationResult:
    order_id: int
    allocations: list[AllocationLine]  # the allocation lines created, ids filled in
    serialized_line_ids: list[int]  # lines skipped: serialized items are never allocated

    @property
    def allocation_ids(self) -> list[int]:
        return [a.id for a in self.allocations if a.id is not None]


async def _change_order(
    uow_factory: UnitOfWorkFactory,
    order_id: int,
    expected_version: int | None,
    decide: Callable[[UnitOfWork, SalesOrder], Awaitable[T]],
) -> T:
    """Load the order, let `decide` change it (and stock), save, commit; retry on conflict."""

    async def attempt() -> T:
        async with uow_factory() as uow:
            order = await uow.orders.get(order_id)
            if order is None:
                raise not_found("Sales order", Subject.ORDER)
            order.check_version(expected_version)
            result = await decide(uow, order)
            if order.changes:  # a no-op (nothing left to allocate) keeps the version
                await uow.orders.save(order)
                await uow.commit()
            return result

    async def conflict() -> Exception:
        # The retry budget is spent: the client's expectedVersion is only at fault
        # when it sent one.
        async with uow_factory() as uow:
            current = await uow.orders.current_version(order_id)
        return version_conflict(current or 0, expected_version)

    return await retrying(attempt, conflict)


def _by_balance(allocations: Sequence[AllocationLine]) -> dict[int, int]:
    quantities: dict[int, int] = defaultdict(int)
    for allocation in allocations:
        quantities[allocation.balance_id] += allocation.quantity
    return quantities


async def create_sales_order(
    uow_factory: UnitOfWorkFactory, customer: str, number: str | None, lines: Sequence[LineInput]
) -> int:
    if not customer.strip():
        raise DomainError(ErrorCode.INVALID_INPUT, "Customer is required.", Subject.CUSTOMER)
    if len(lines) > MAX_LINES:
        raise DomainError(ErrorCode.INVALID_INPUT, f"At most {MAX_LINES} lines.", Subject.LINES)
    async with uow_factory() as uow:
        order = await uow.orders.create(customer.strip(), number)
        for index, line in enumerate(lines):
            item = await uow.catalog.item_by_sku(line.sku)
            if item is None:
                raise not_found(f"Item {line.sku!r}", Subject.ITEM, index)
            try:
                order.add_line(item.id, item.serialized, line.quantity)
            except DomainError as error:
                raise error.at(index) from None
        await uow.orders.save(order)
        await uow.commit()
        return order.id


async def add_sales_order_line(
    uow_factory: UnitOfWorkFactory,
    order_id: int,
    sku: str,
    quantity: int,
    expected_version: int | None,
) -> int:
    async def decide(uow: UnitOfWork, order: SalesOrder) -> int:
        if len(order.lines) >= MAX_LINES:
            raise DomainError(ErrorCode.INVALID_INPUT, f"At most {MAX_LINES} lines.", Subject.LINES)
        item = await uow.catalog.item_by_sku(sku)
        if item is None:
            raise not_found(f"Item {sku!r}", Subject.ITEM)
        order.add_line(item.id, item.serialized, quantity)
        return order.id

    return await _change_order(uow_factory, order_id, expected_version, decide)


async def _order_of_line(uow_factory: UnitOfWorkFactory, line_id: int) -> int:
    async with uow_factory() as uow:
        order_id = await uow.orders.order_of_line(line_id)
    if order_id is None:
        raise not_found("Sales order line", Subject.LINE)
    return order_id


async def update_sales_order_line(
    uow_factory: UnitOfWorkFactory, line_id: int, quantity: int, expected_version: int | None
) -> int:
    async def decide(uow: UnitOfWork, order: SalesOrder) -> int:
        order.change_line_quantity(line_id, quantity)
        return order.id

    order_id = await _order_of_line(uow_factory, line_id)
    return await _change_order(uow_factory, order_id, expected_version, decide)


async def delete_sales_order_line(
    uow_factory: UnitOfWorkFactory, line_id: int, expected_version: int | None
) -> int:
    async def decide(uow: UnitOfWork, order: SalesOrder) -> int:
        order.delete_line(line_id)
        return order.id

    order_id = await _order_of_line(uow_factory, line_id)
    return await _change_order(uow_factory, order_id, expected_version, decide)


async def allocate_order(
    uow_factory: UnitOfWorkFactory,
    order_id: int,
    expected_version: int | None = None,
    strategy: AllocationStrategy = AllocationStrategy.FEFO,
) -> AllocationResult:
    async def decide(uow: UnitOfWork, order: SalesOrder) -> AllocationResult:
        demand = order.demand()
        stock = await uow.stock.candidates({line.item_id for line in demand})
        created = order.record_allocation(plan_allocation(demand, stock, strategy))
        await uow.stock.reserve(_by_balance(created))
        serialized = [line.id for line in order.serialized_lines() if line.id is not None]
        return AllocationResult(order.id, created, serialized)

    return await _change_order(uow_factory, order_id, expected_version, decide)


async def pack_allocated_order(
    uow_factory: UnitOfWorkFactory, order_id: int, expected_version: int | None
) -> list[int]:
    async def decide(uow: UnitOfWork, order: SalesOrder) -> list[PackedLine]:
        packed = order.pack()
        await uow.stock.ship(_by_balance([a for p in packed for a in p.allocations]))
        return packed

    packed = await _change_order(uow_factory, order_id, expected_version, decide)
    return [p.id for p in packed if p.id is not None]


async def remove_allocation_lines(
    uow_factory: UnitOfWorkFactory,
    allocation_ids: Sequence[int | None],
    expected_version: int | None,
) -> int:
    """All or nothing; every id must name an allocation line of one and the same order."""
    if not allocation_ids:
        raise DomainError(
            ErrorCode.INVALID_INPUT, "Give at least one allocation line id.", Subject.ALLOCATION
        )
    async with uow_factory() as uow:
        orders = await uow.orders.orders_of_allocations(
            [i for i in allocation_ids if i is not None]
        )
    for index, allocation_id in enumerate(allocation_ids):
        if allocation_id is None or allocation_id not in orders:
            raise not_found("Allocation line", Subject.ALLOCATION, index)
    if len(set(orders.values())) > 1:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            "All allocation lines must belong to one sales order.",
            Subject.ALLOCATION,
        )
    ids = [i for i in allocation_ids if i is not None]

    async def decide(uow: UnitOfWork, order: SalesOrder) -> int:
        removed = order.remove_allocations(ids)
        await uow.stock.release(_by_balance(removed))
        return order.id

    return await _change_order(uow_factory, orders[ids[0]], expected_version, decide)


async def _order_of_backorder(uow_factory: UnitOfWorkFactory, backorder_id: int) -> int:
    async with uow_factory() as uow:
        order_id = await uow.orders.order_of_backorder(backorder_id)
    if order_id is None:
        raise not_found("Backorder", Subject.BACKORDER)
    return order_id


async def cancel_backorder(
    uow_factory: UnitOfWorkFactory,
    backorder_id: int,
    reason: str | None = None,
    expected_version: int | None = None,
) -> int:
    async def decide(uow: UnitOfWork, order: SalesOrder) -> int:
        order.cancel_backorder(backorder_id, reason)
        return order.id

    order_id = await _order_of_backorder(uow_factory, backorder_id)
    return await _change_order(uow_factory, order_id, expected_version, decide)


async def delete_backorder(
    uow_factory: UnitOfWorkFactory, backorder_id: int, expected_version: int | None = None
) -> int:
    async def decide(uow: UnitOfWork, order: SalesOrder) -> int:
        order.delete_backorder(backorder_id)
        return order.id

    order_id = await _order_of_backorder(uow_factory, backorder_id)
    return await _change_order(uow_factory, order_id, expected_version, decide)
