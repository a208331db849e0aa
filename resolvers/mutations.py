"""Mutation resolvers: parse ids, call one use case, shape the payload.

A DomainError becomes the payload's `errors`; anything else propagates and is
masked by the schema (and logged with its traceback).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import strawberry

from resolvers.errors import INDEX, VERSION_PATH, errors_in_payload, require_pk
from schema.enums import AllocationStrategy, ErrorCode
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
from services.domain.errors import DomainError, Subject

T = TypeVar("T", bound=FromRow)


async def _load(info: Info, cls: type[T], pks: Sequence[int]) -> list[T]:
    """Objects as committed: the loaders are fresh once per mutation field, so nothing
    cached before this change shows, and one payload's reads still share batches."""
    groups = await info.context.after_change(str(info.path.key)).by(cls.kind).load_many(pks)
    return [cls.from_row(rows[0]) for rows in groups if rows]


async def _order(info: Info, pk: int) -> SalesOrder:
    (order,) = await _load(info, SalesOrder, [pk])
    return order


@errors_in_payload(
    ItemPayload,
    {Subject.ITEM: ("input", "sku"), Subject.NAME: ("input", "name"),
     Subject.UNIT: ("input", "unit")},
)  # fmt: skip
async def create_item(info: Info, input: CreateItemInput) -> ItemPayload:
    item_id = await catalog.create_item(
        info.context.unit_of_work, input.sku, input.name, input.serialized, input.unit
    )
    (item,) = await _load(info, Item, [item_id])
    return ItemPayload(item=item)


@errors_in_payload(
    LocationPayload, {Subject.LOCATION: ("input", "code"), Subject.NAME: ("input", "name")}
)
async def create_location(info: Info, input: CreateLocationInput) -> LocationPayload:
    location_id = await catalog.create_location(
        info.context.unit_of_work, input.code, input.name, input.pick_sequence
    )
    (location,) = await _load(info, Location, [location_id])
    return LocationPayload(location=location)


@errors_in_payload(
    AdjustInventoryPayload,
    {Subject.ITEM: ("input", "sku"), Subject.LOCATION: ("input", "locationCode"),
     Subject.LOT: ("input", "lotNumber"), Subject.QUANTITY: ("input", "quantity")},
)  # fmt: skip
async def adjust_inventory(info: Info, input: AdjustInventoryInput) -> AdjustInventoryPayload:
    change = catalog.Adjustment(
        input.sku, input.lot_number, input.location_code, input.quantity, input.reason,
        input.received_at, input.expires_at,
    )  # fmt: skip
    result = await catalog.adjust_inventory(info.context.unit_of_work, change)
    (balance,) = await _load(info, InventoryBalance, [result.balance_id])
    (adjustment,) = await _load(info, InventoryAdjustment, [result.adjustment_id])
    return AdjustInventoryPayload(balance=balance, adjustment=adjustment)


@errors_in_payload(
    SalesOrderPayload,
    {Subject.CUSTOMER: ("input", "customer"), Subject.ORDER_NUMBER: ("input", "number"),
     Subject.LINES: ("input", "lines"), Subject.ITEM: ("input", "lines", INDEX, "sku"),
     Subject.QUANTITY: ("input", "lines", INDEX, "quantity")},
)  # fmt: skip
async def create_sales_order(info: Info, input: CreateSalesOrderInput) -> SalesOrderPayload:
    lines = [orders.LineInput(line.sku, line.quantity) for line in input.lines]
    order_id = await orders.create_sales_order(
        info.context.unit_of_work, input.customer, input.number, lines
    )
    return SalesOrderPayload(sales_order=await _order(info, order_id))


@errors_in_payload(
    SalesOrderPayload,
    {**VERSION_PATH, Subject.ORDER: ("salesOrderId",), Subject.ITEM: ("sku",),
     Subject.LINES: ("sku",), Subject.QUANTITY: ("quantity",)},
)  # fmt: skip
async def add_sales_order_line(
    info: Info,
    sales_order_id: strawberry.ID,
    sku: str,
    quantity: int,
    expected_version: int | None = None,
) -> SalesOrderPayload:
    order_id = await orders.add_sales_order_line(
        info.context.unit_of_work,
        require_pk(sales_order_id, "SalesOrder", Subject.ORDER),
        sku, quantity, expected_version,
    )  # fmt: skip
    return SalesOrderPayload(sales_order=await _order(info, order_id))


@errors_in_payload(
    SalesOrderPayload, {**VERSION_PATH, Subject.LINE: ("id",), Subject.QUANTITY: ("quantity",)}
)
async def update_sales_order_line(
    info: Info, id: strawberry.ID, quantity: int, expected_version: int | None = None
) -> SalesOrderPayload:
    order_id = await orders.update_sales_order_line(
        info.context.unit_of_work, require_pk(id, "SalesOrderLine", Subject.LINE), quantity,
        expected_version,
    )  # fmt: skip
    return SalesOrderPayload(sales_order=await _order(info, order_id))


@errors_in_payload(SalesOrderPayload, {**VERSION_PATH, Subject.LINE: ("id",)})
async def delete_sales_order_line(
    info: Info, id: strawberry.ID, expected_version: int | None = None
) -> SalesOrderPayload:
    order_id = await orders.delete_sales_order_line(
        info.context.unit_of_work, require_pk(id, "SalesOrderLine", Subject.LINE), expected_version
    )
    return SalesOrderPayload(sales_order=await _order(info, order_id))


@errors_in_payload(AllocateOrderPayload, {**VERSION_PATH, Subject.ORDER: ("id",)})
async def allocate_order(
    info: Info,
    id: strawberry.ID,
    expected_version: int | None = None,
    strategy: AllocationStrategy | None = None,
) -> AllocateOrderPayload:
    result = await orders.allocate_order(
        info.context.unit_of_work, require_pk(id, "SalesOrder", Subject.ORDER), expected_version,
        strategy or AllocationStrategy.FEFO,
    )  # fmt: skip
    order = await _order(info, result.order_id)
    # The one error that does not stop the mutation: serialized lines are skipped.
    skipped = [
        UserError(
            code=ErrorCode.SERIALIZED_ITEM,
            field=["lines", str(index)],
            message=f"Line {line.line_number} is of a serialized item and was not allocated.",
        )
        for index, line in enumerate(await order.load_lines(info))
        if line.pk in result.serialized_line_ids
    ]
    return AllocateOrderPayload(
        sales_order=order,
        allocations=await _load(info, Allocation, result.allocation_ids),
        errors=skipped,
    )


@errors_in_payload(PackAllocatedOrderPayload, {**VERSION_PATH, Subject.ORDER: ("id",)})
async def pack_allocated_order(
    info: Info, id: strawberry.ID, expected_version: int | None = None
) -> PackAllocatedOrderPayload:
    order_id = require_pk(id, "SalesOrder", Subject.ORDER)
    packed_ids = await orders.pack_allocated_order(
        info.context.unit_of_work, order_id, expected_version
    )
    return PackAllocatedOrderPayload(
        sales_order=await _order(info, order_id),
        packed_lines=await _load(info, PackedLine, packed_ids),
    )


@errors_in_payload(
    RemoveAllocationLinesPayload, {**VERSION_PATH, Subject.ALLOCATION: ("ids", INDEX)}
)
async def remove_allocation_lines(
    info: Info, ids: list[strawberry.ID], expected_version: int | None = None
) -> RemoveAllocationLinesPayload:
    pks = [_pk_or_none(i, "Allocation") for i in ids]  # the use case names each bad one
    order_id = await orders.remove_allocation_lines(
        info.context.unit_of_work, pks, expected_version
    )
    return RemoveAllocationLinesPayload(
        sales_order=await _order(info, order_id), removed_ids=list(dict.fromkeys(ids))
    )


def _pk_or_none(global_id: str, type_name: str) -> int | None:
    try:
        return require_pk(global_id, type_name, Subject.ALLOCATION)
    except DomainError:
        return None


async def _backorder_payload(info: Info, backorder_id: int, order_id: int) -> BackorderPayload:
    backorders = await _load(info, Backorder, [backorder_id])  # empty once deleted
    return BackorderPayload(
        backorder=backorders[0] if backorders else None,
        sales_order=await _order(info, order_id),
    )


@errors_in_payload(BackorderPayload, {**VERSION_PATH, Subject.BACKORDER: ("id",)})
async def cancel_backorder(
    info: Info, id: strawberry.ID, reason: str | None = None, expected_version: int | None = None
) -> BackorderPayload:
    """expectedVersion (the order's) is optional, as on every order mutation."""
    backorder_id = require_pk(id, "Backorder", Subject.BACKORDER)
    order_id = await orders.cancel_backorder(
        info.context.unit_of_work, backorder_id, reason, expected_version
    )
    return await _backorder_payload(info, backorder_id, order_id)


@errors_in_payload(BackorderPayload, {**VERSION_PATH, Subject.BACKORDER: ("id",)})
async def delete_backorder(
    info: Info, id: strawberry.ID, expected_version: int | None = None
) -> BackorderPayload:
    """The payload's backorder is null, since it is gone; its order is returned."""
    backorder_id = require_pk(id, "Backorder", Subject.BACKORDER)
    order_id = await orders.delete_backorder(
        info.context.unit_of_work, backorder_id, expected_version
    )
    return await _backorder_payload(info, backorder_id, order_id)
