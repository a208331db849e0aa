"""Use cases that change a sales order. Each reads straight down: in one unit of work,
get the order, check the client's version, decide in the aggregate, save (which claims
the order first), change stock, commit; @retry_on_conflict runs it again when another
transaction won a race."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.domain.errors import DomainError, ErrorCode, Subject, not_found
from services.domain.order import (
    DEFAULT_PRIORITY,
    AllocationLine,
    PackedLine,
    SalesOrder,
    require_priority,
)
from services.domain.planner import AllocationStrategy, plan_allocation
from services.ports import UnitOfWork, UnitOfWorkFactory
from services.retry import retry_on_conflict

MAX_LINES = 500  # a bound on one request's work; larger orders are split by the client


@dataclass(frozen=True)
class LineInput:
    sku: str
    quantity: int


@dataclass(frozen=True)
class AllocationResult:
    order_id: int
    allocations: list[AllocationLine]  # the allocation lines created, ids filled in
    serialized_line_ids: list[int]  # lines left alone: serialized items are never allocated
    skipped: list[DomainError]  # SERIALIZED_ITEM for each of them, at its place in the order

    @property
    def allocation_ids(self) -> list[int]:
        return [a.id for a in self.allocations if a.id is not None]


async def _order(uow: UnitOfWork, order_id: int, expected_version: int | None) -> SalesOrder:
    """The order, at the version the client expects (when it says)."""
    order = await uow.orders.get(order_id)
    if order is None:
        raise not_found("Sales order", Subject.ORDER)
    order.check_version(expected_version)
    return order


async def create_sales_order(
    uow_factory: UnitOfWorkFactory,
    customer: str,
    number: str | None,
    lines: Sequence[LineInput],
    priority: int = DEFAULT_PRIORITY,
) -> int:
    if not customer.strip():
        raise DomainError(ErrorCode.INVALID_INPUT, "Customer is required.", Subject.CUSTOMER)
    if len(lines) > MAX_LINES:
        raise DomainError(ErrorCode.INVALID_INPUT, f"At most {MAX_LINES} lines.", Subject.LINES)
    require_priority(priority)
    async with uow_factory() as uow:
        order = await uow.orders.create(customer.strip(), number)
        order.set_priority(priority)  # written by the save below, which claims the new order
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


@retry_on_conflict
async def add_sales_order_line(
    uow_factory: UnitOfWorkFactory,
    order_id: int,
    sku: str,
    quantity: int,
    expected_version: int | None = None,
) -> int:
    async with uow_factory() as uow:
        order = await _order(uow, order_id, expected_version)
        if len(order.lines) >= MAX_LINES:
            raise DomainError(ErrorCode.INVALID_INPUT, f"At most {MAX_LINES} lines.", Subject.LINES)
        item = await uow.catalog.item_by_sku(sku)
        if item is None:
            raise not_found(f"Item {sku!r}", Subject.ITEM)
        order.add_line(item.id, item.serialized, quantity)
        await uow.orders.save(order)
        await uow.commit()
        return order.id


@retry_on_conflict
async def set_sales_order_priority(
    uow_factory: UnitOfWorkFactory,
    order_id: int,
    priority: int,
    expected_version: int | None = None,
) -> int:
    """Where the order's backorders come in fillBackorders' order; a new version."""
    require_priority(priority)
    async with uow_factory() as uow:
        order = await _order(uow, order_id, expected_version)
        order.set_priority(priority)
        await uow.orders.save(order)
        await uow.commit()
        return order.id


async def _order_of_line(uow: UnitOfWork, line_id: int, expected_version: int | None) -> SalesOrder:
    order_id = await uow.orders.order_of_line(line_id)
    if order_id is None:
        raise not_found("Sales order line", Subject.LINE)
    return await _order(uow, order_id, expected_version)


@retry_on_conflict
async def update_sales_order_line(
    uow_factory: UnitOfWorkFactory, line_id: int, quantity: int, expected_version: int | None = None
) -> int:
    async with uow_factory() as uow:
        order = await _order_of_line(uow, line_id, expected_version)
        order.change_line_quantity(line_id, quantity)
        await uow.orders.save(order)
        await uow.commit()
        return order.id


@retry_on_conflict
async def delete_sales_order_line(
    uow_factory: UnitOfWorkFactory, line_id: int, expected_version: int | None = None
) -> int:
    async with uow_factory() as uow:
        order = await _order_of_line(uow, line_id, expected_version)
        order.delete_line(line_id)
        await uow.orders.save(order)
        await uow.commit()
        return order.id


@retry_on_conflict
async def allocate_order(
    uow_factory: UnitOfWorkFactory,
    order_id: int,
    expected_version: int | None = None,
    strategy: AllocationStrategy = AllocationStrategy.FEFO,
) -> AllocationResult:
    """A no-op (nothing left to allocate) writes nothing and keeps the version."""
    async with uow_factory() as uow:
        order = await _order(uow, order_id, expected_version)
        demand = order.demand()
        stock = await uow.stock.candidates({line.item_id for line in demand})
        created = order.record_allocation(plan_allocation(demand, stock, strategy))
        if order.changes:
            await uow.orders.save(order)
            await uow.stock.reserve({order.id: created})
            await uow.commit()
        serialized = [line.id for line in order.lines if line.serialized and line.id is not None]
        return AllocationResult(order.id, created, serialized, _skipped(order))


def _skipped(order: SalesOrder) -> list[DomainError]:
    return [
        DomainError(
            ErrorCode.SERIALIZED_ITEM,
            f"Line {line.line_number} is of a serialized item and was not allocated.",
            Subject.LINE,
            index=index,  # in the order's lines, by line number
        )
        for index, line in enumerate(order.lines)
        if line.serialized
    ]


@retry_on_conflict
async def pack_allocated_order(
    uow_factory: UnitOfWorkFactory, order_id: int, expected_version: int | None = None
) -> list[int]:
    async with uow_factory() as uow:
        order = await _order(uow, order_id, expected_version)
        packed: list[PackedLine] = order.pack()
        await uow.orders.save(order)
        await uow.stock.ship(order.id, [a for p in packed for a in p.allocations])
        await uow.commit()
        return [p.id for p in packed if p.id is not None]


@retry_on_conflict
async def remove_allocation_lines(
    uow_factory: UnitOfWorkFactory,
    allocation_ids: Sequence[int | None],
    expected_version: int | None = None,
    reason: str | None = None,
) -> int:
    """All or nothing; every id must name an allocation line of one and the same order.
    The reason is kept on the ledger's DEALLOCATE movements."""
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
        order = await _order(uow, next(iter(orders.values())), expected_version)
        removed = order.remove_allocations([i for i in allocation_ids if i is not None])
        await uow.orders.save(order)
        await uow.stock.release(order.id, removed, reason)
        await uow.commit()
        return order.id


async def _order_of_backorder(
    uow: UnitOfWork, backorder_id: int, expected_version: int | None
) -> SalesOrder:
    order_id = await uow.orders.order_of_backorder(backorder_id)
    if order_id is None:
        raise not_found("Backorder", Subject.BACKORDER)
    return await _order(uow, order_id, expected_version)


@retry_on_conflict
async def cancel_backorder(
    uow_factory: UnitOfWorkFactory,
    backorder_id: int,
    reason: str | None = None,
    expected_version: int | None = None,
) -> int:
    async with uow_factory() as uow:
        order = await _order_of_backorder(uow, backorder_id, expected_version)
        order.cancel_backorder(backorder_id, reason)
        await uow.orders.save(order)
        await uow.commit()
        return order.id


@retry_on_conflict
async def delete_backorder(
    uow_factory: UnitOfWorkFactory, backorder_id: int, expected_version: int | None = None
) -> int:
    async with uow_factory() as uow:
        order = await _order_of_backorder(uow, backorder_id, expected_version)
        order.delete_backorder(backorder_id)
        await uow.orders.save(order)
        await uow.commit()
        return order.id
