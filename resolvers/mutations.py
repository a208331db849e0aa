"""Mutation resolvers: parse ids, call one use case, shape the payload.

A DomainError becomes the payload's `errors`; anything else propagates and is
masked by the schema (and logged with its traceback).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import strawberry

from resolvers.errors import require_pk, user_error
from schema.enums import AllocationStrategy
from schema.errors import UserError
from schema.inputs import (
    AdjustInventoryInput,
    CreateItemInput,
    CreateLocationInput,
    CreateSalesOrderInput,
)
from schema.payloads import (
    AdjustInventoryPayload,
    AllocateOrderPayload,
    BackorderPayload,
    ItemPayload,
    LocationPayload,
    PackAllocatedOrderPayload,
    RemoveAllocationLinesPayload,
    SalesOrderPayload,
)
from schema.types import (
    Allocation,
    Backorder,
    FromRow,
    Info,
    InventoryAdjustment,
    InventoryBalance,
    Item,
    Location,
    PackedLine,
    SalesOrder,
)
from services import catalog, orders
from services.domain.errors import DomainError, ErrorCode

R = TypeVar("R")
T = TypeVar("T", bound=FromRow)


async def _run(call: Callable[[], Awaitable[R]]) -> R | list[UserError]:
    try:
        return await call()
    except DomainError as error:
        return [user_error(error)]


async def _load(info: Info, cls: type[T], pks: Sequence[int]) -> list[T]:
    loaders = info.context.after_change()
    rows = [await loaders.one(cls.kind, pk) for pk in pks]
    return [cls.from_row(row) for row in rows if row is not None]


async def _order(info: Info, pk: int) -> SalesOrder:
    (order,) = await _load(info, SalesOrder, [pk])
    return order


async def create_item(info: Info, input: CreateItemInput) -> ItemPayload:
    result = await _run(
        lambda: catalog.create_item(
            info.context.unit_of_work, input.sku, input.name, input.serialized, input.unit
        )
    )
    if isinstance(result, list):
        return ItemPayload(errors=result)
    (item,) = await _load(info, Item, [result])
    return ItemPayload(item=item)


async def create_location(info: Info, input: CreateLocationInput) -> LocationPayload:
    result = await _run(
        lambda: catalog.create_location(
            info.context.unit_of_work, input.code, input.name, input.pick_sequence
        )
    )
    if isinstance(result, list):
        return LocationPayload(errors=result)
    (location,) = await _load(info, Location, [result])
    return LocationPayload(location=location)


async def adjust_inventory(info: Info, input: AdjustInventoryInput) -> AdjustInventoryPayload:
    change = catalog.Adjustment(
        input.sku,
        input.lot_number,
        input.location_code,
        input.quantity,
        input.reason,
        input.received_at,
        input.expires_at,
    )
    result = await _run(lambda: catalog.adjust_inventory(info.context.unit_of_work, change))
    if isinstance(result, list):
        return AdjustInventoryPayload(errors=result)
    (balance,) = await _load(info, InventoryBalance, [result.balance_id])
    adjustment = (await _load(info, InventoryAdjustment, [result.adjustment_id]))[0]
    return AdjustInventoryPayload(balance=balance, adjustment=adjustment)


async def create_sales_order(info: Info, input: CreateSalesOrderInput) -> SalesOrderPayload:
    lines = [orders.LineInput(line.sku, line.quantity) for line in input.lines]
    result = await _run(
        lambda: orders.create_sales_order(
            info.context.unit_of_work, input.customer, input.number, lines
        )
    )
    if isinstance(result, list):
        return SalesOrderPayload(errors=result)
    return SalesOrderPayload(sales_order=await _order(info, result))


async def add_sales_order_line(
    info: Info,
    sales_order_id: strawberry.ID,
    sku: str,
    quantity: int,
    expected_version: int | None = None,
) -> SalesOrderPayload:
    result = await _run(
        lambda: orders.add_sales_order_line(
            info.context.unit_of_work,
            require_pk(sales_order_id, "SalesOrder", ["salesOrderId"]),
            sku,
            quantity,
            expected_version,
        )
    )
    if isinstance(result, list):
        return SalesOrderPayload(errors=result)
    return SalesOrderPayload(sales_order=await _order(info, result))


async def update_sales_order_line(
    info: Info, id: strawberry.ID, quantity: int, expected_version: int | None = None
) -> SalesOrderPayload:
    result = await _run(
        lambda: orders.update_sales_order_line(
            info.context.unit_of_work, require_pk(id, "SalesOrderLine"), quantity, expected_version
        )
    )
    if isinstance(result, list):
        return SalesOrderPayload(errors=result)
    return SalesOrderPayload(sales_order=await _order(info, result))


async def delete_sales_order_line(
    info: Info, id: strawberry.ID, expected_version: int | None = None
) -> SalesOrderPayload:
    result = await _run(
        lambda: orders.delete_sales_order_line(
            info.context.unit_of_work, require_pk(id, "SalesOrderLine"), expected_version
        )
    )
    if isinstance(result, list):
        return SalesOrderPayload(errors=result)
    return SalesOrderPayload(sales_order=await _order(info, result))


async def allocate_order(
    info: Info,
    id: strawberry.ID,
    expected_version: int | None = None,
    strategy: AllocationStrategy | None = None,
) -> AllocateOrderPayload:
    result = await _run(
        lambda: orders.allocate_order(
            info.context.unit_of_work,
            require_pk(id, "SalesOrder"),
            expected_version,
            strategy or AllocationStrategy.FEFO,
        )
    )
    if isinstance(result, list):
        return AllocateOrderPayload(errors=result)
    order = await _order(info, result.order_id)
    lines = await order.lines(info)
    # The one error that does not stop the mutation: serialized lines are skipped.
    skipped = [
        UserError(
            code=ErrorCode.SERIALIZED_ITEM,
            field=["lines", str(index)],
            message=f"Line {line.line_number} is of a serialized item and was not allocated.",
        )
        for index, line in enumerate(lines)
        if line.pk in result.serialized_line_ids
    ]
    return AllocateOrderPayload(
        sales_order=order,
        errors=skipped,
        allocations=await _load(info, Allocation, result.allocation_ids),
    )


async def pack_allocated_order(
    info: Info, id: strawberry.ID, expected_version: int | None = None
) -> PackAllocatedOrderPayload:
    result = await _run(
        lambda: orders.pack_allocated_order(
            info.context.unit_of_work, require_pk(id, "SalesOrder"), expected_version
        )
    )
    if isinstance(result, list):
        return PackAllocatedOrderPayload(errors=result)
    return PackAllocatedOrderPayload(
        sales_order=await _order(info, require_pk(id, "SalesOrder")),
        packed_lines=await _load(info, PackedLine, result),
    )


async def remove_allocation_lines(
    info: Info,
    ids: list[strawberry.ID],
    expected_version: int | None = None,
) -> RemoveAllocationLinesPayload:
    result = await _run(
        lambda: orders.remove_allocation_lines(
            info.context.unit_of_work, [pk_or_none(i, "Allocation") for i in ids], expected_version
        )
    )
    if isinstance(result, list):
        return RemoveAllocationLinesPayload(errors=result)
    return RemoveAllocationLinesPayload(sales_order=await _order(info, result), removed_ids=ids)


def pk_or_none(global_id: str, type_name: str) -> int | None:
    try:
        return require_pk(global_id, type_name)
    except DomainError:
        return None


async def _backorder_payload(info: Info, backorder_pk: int, order_pk: int) -> BackorderPayload:
    backorder = await _load(info, Backorder, [backorder_pk])  # empty once deleted
    return BackorderPayload(
        backorder=backorder[0] if backorder else None, sales_order=await _order(info, order_pk)
    )


async def cancel_backorder(
    info: Info, id: strawberry.ID, reason: str | None = None
) -> BackorderPayload:
    result = await _run(
        lambda: orders.cancel_backorder(
            info.context.unit_of_work, require_pk(id, "Backorder"), reason
        )
    )
    if isinstance(result, list):
        return BackorderPayload(errors=result)
    return await _backorder_payload(info, require_pk(id, "Backorder"), result)


async def delete_backorder(info: Info, id: strawberry.ID) -> BackorderPayload:
    """The payload's backorder is null: it is gone. Its order is returned."""
    result = await _run(
        lambda: orders.delete_backorder(info.context.unit_of_work, require_pk(id, "Backorder"))
    )
    if isinstance(result, list):
        return BackorderPayload(errors=result)
    return await _backorder_payload(info, require_pk(id, "Backorder"), result)
