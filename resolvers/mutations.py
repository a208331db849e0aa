"""Mutation resolvers: parse ids, call one use case, build the payload for what the
request selected from what the use case's unit of work wrote (no second read of it).

A DomainError becomes the payload's `errors` (resolvers/errors.py, with the argument
path each mutation gives its subjects); anything else propagates and is masked by the
schema (and logged with its traceback).
"""

from __future__ import annotations

import logging

import strawberry

from db.errors import Unavailable
from resolvers.context import Info
from resolvers.errors import (
    INDEX,
    VERSION_PATH,
    errors_in_payload,
    require_pk,
    unavailable_error,
    user_error,
)
from resolvers.graph import Graph, global_id
from resolvers.selection import Wanted, wanted
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
    FillBackordersPayload,
    ItemPayload,
    LocationPayload,
    PackAllocatedOrderPayload,
    RemoveAllocationLinesPayload,
    SalesOrderPayload,
)
from schema.types import Backorder, SalesOrder, SalesOrderLine
from services import catalog, fill, orders
from services.domain.errors import DomainError, Subject
from services.domain.fill import DEFAULT_FILL_LIMIT

log = logging.getLogger(__name__)
# What a client is told of an unexpected failure of the fill after a receipt (logged in
# full): the receipt stands, and fillBackorders may be called again.
FILL_FAILED = UserError(
    code=ErrorCode.UNAVAILABLE,
    message="The backorders could not be filled just now; the adjustment stands. "
    "Call fillBackorders for the item.",
)
LINE_PATHS = {**VERSION_PATH, Subject.LINE: ("id",), Subject.QUANTITY: ("quantity",)}
ORDER_PATHS = {**VERSION_PATH, Subject.ORDER: ("id",)}
BACKORDER_PATHS = {**VERSION_PATH, Subject.BACKORDER: ("id",)}


async def _order(graph: Graph, order_id: int, below: Wanted) -> SalesOrder | None:
    """The order as the mutation left it, when the request selected it."""
    if "salesOrder" not in below:
        return None
    (record,) = (await graph.loaders.order_by_id.load([order_id])).values()
    assert record is not None
    (order,) = await graph.orders([record], below["salesOrder"])
    return order


async def _order_payload(
    info: Info, order_id: int, deleted: strawberry.ID | None = None
) -> SalesOrderPayload:
    return SalesOrderPayload(
        sales_order=await _order(await info.context.after_change(), order_id, wanted(info)),
        deleted_id=deleted,
    )


@errors_in_payload(
    ItemPayload,
    {Subject.ITEM: ("input", "sku"), Subject.NAME: ("input", "name"),
     Subject.UNIT: ("input", "unit")},
)  # fmt: skip
async def create_item(info: Info, input: CreateItemInput) -> ItemPayload:
    item_id = await catalog.create_item(
        info.context.unit_of_work, input.sku, input.name, input.serialized, input.unit
    )
    graph, below = await info.context.after_change(), wanted(info)
    built = await graph.by_id(graph.loaders.item_by_id, [item_id], graph.items, below["item"])
    return ItemPayload(item=built[item_id])


@errors_in_payload(
    LocationPayload, {Subject.LOCATION: ("input", "code"), Subject.NAME: ("input", "name")}
)
async def create_location(info: Info, input: CreateLocationInput) -> LocationPayload:
    location_id = await catalog.create_location(
        info.context.unit_of_work, input.code, input.name, input.pick_sequence
    )
    graph, below = await info.context.after_change(), wanted(info)
    built = await graph.by_id(
        graph.loaders.location_by_id, [location_id], graph.locations, below["location"]
    )
    return LocationPayload(location=built[location_id])


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
    filled = None
    if info.context.auto_fill_backorders and input.quantity > 0:
        filled = await _auto_fill(info, input.sku)
    graph, below = await info.context.after_change(), wanted(info)
    loaders = graph.loaders
    balance = await graph.by_id(
        loaders.balance_by_id, [result.balance_id], graph.balances, below["balance"]
    )
    adjustment = await graph.by_id(
        loaders.adjustment_by_id, [result.adjustment_id], graph.adjustments, below["adjustment"]
    )
    return AdjustInventoryPayload(
        balance=balance[result.balance_id], adjustment=adjustment[result.adjustment_id],
        filled=None if filled is None else await _filled_payload(graph, below["filled"], filled),
    )  # fmt: skip


async def _auto_fill(info: Info, sku: str) -> fill.FillResult | FillBackordersPayload:
    """fillBackorders after the receipt's commit, as the same actor and request (the
    context's units of work). Its failure is the fill's alone: the receipt stands, and
    it is not a refusal a retry of the receipt could change, so an idempotency key keeps
    the outcome."""
    try:
        return await fill.fill_backorders(info.context.unit_of_work, sku)
    except DomainError as error:
        return FillBackordersPayload(errors=[user_error(error, {})])
    except Unavailable as error:
        return FillBackordersPayload(errors=[unavailable_error(error)])
    except Exception:
        log.exception("the fill after a receipt failed; the receipt stands")
        return FillBackordersPayload(errors=[FILL_FAILED])


async def _filled_payload(
    graph: Graph, below: Wanted, filled: fill.FillResult | FillBackordersPayload
) -> FillBackordersPayload:
    if isinstance(filled, FillBackordersPayload):
        return filled
    return await _fill_payload(graph, below, filled)


@errors_in_payload(
    SalesOrderPayload,
    {Subject.CUSTOMER: ("input", "customer"), Subject.ORDER_NUMBER: ("input", "number"),
     Subject.LINES: ("input", "lines"), Subject.ITEM: ("input", "lines", INDEX, "sku"),
     Subject.QUANTITY: ("input", "lines", INDEX, "quantity"),
     Subject.PRIORITY: ("input", "priority")},
)  # fmt: skip
async def create_sales_order(info: Info, input: CreateSalesOrderInput) -> SalesOrderPayload:
    lines = [orders.LineInput(line.sku, line.quantity) for line in input.lines]
    order_id = await orders.create_sales_order(
        info.context.unit_of_work, input.customer, input.number, lines, input.priority
    )
    return await _order_payload(info, order_id)


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
        info.context.unit_of_work, require_pk(sales_order_id, "SalesOrder", Subject.ORDER),
        sku, quantity, expected_version,
    )  # fmt: skip
    return await _order_payload(info, order_id)


@errors_in_payload(SalesOrderPayload, {**ORDER_PATHS, Subject.PRIORITY: ("priority",)})
async def set_sales_order_priority(
    info: Info, id: strawberry.ID, priority: int, expected_version: int | None = None
) -> SalesOrderPayload:
    """Higher is filled first by fillBackorders; a new version, as every order change."""
    order_id = await orders.set_sales_order_priority(
        info.context.unit_of_work, require_pk(id, "SalesOrder", Subject.ORDER), priority,
        expected_version,
    )  # fmt: skip
    return await _order_payload(info, order_id)


@errors_in_payload(SalesOrderPayload, LINE_PATHS)
async def update_sales_order_line(
    info: Info, id: strawberry.ID, quantity: int, expected_version: int | None = None
) -> SalesOrderPayload:
    order_id = await orders.update_sales_order_line(
        info.context.unit_of_work, require_pk(id, "SalesOrderLine", Subject.LINE), quantity,
        expected_version,
    )  # fmt: skip
    return await _order_payload(info, order_id)


@errors_in_payload(SalesOrderPayload, LINE_PATHS)
async def delete_sales_order_line(
    info: Info, id: strawberry.ID, expected_version: int | None = None
) -> SalesOrderPayload:
    line_id = require_pk(id, "SalesOrderLine", Subject.LINE)
    order_id = await orders.delete_sales_order_line(
        info.context.unit_of_work, line_id, expected_version
    )
    return await _order_payload(info, order_id, global_id(SalesOrderLine, line_id))


@errors_in_payload(AllocateOrderPayload, ORDER_PATHS)
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
    graph, below = await info.context.after_change(), wanted(info)
    allocations = await graph.by_id(
        graph.loaders.allocation_by_id, result.allocation_ids, graph.allocations,
        below["allocations"],
    )  # fmt: skip
    return AllocateOrderPayload(
        sales_order=await _order(graph, result.order_id, below),
        allocations=list(allocations.values()),
        # The one error that does not stop the mutation: serialized lines are skipped.
        errors=[user_error(error, {Subject.LINE: ("lines", INDEX)}) for error in result.skipped],
    )


FILL_PATHS = {Subject.ITEM: ("sku",), Subject.LIMIT: ("limit",)}


@errors_in_payload(FillBackordersPayload, FILL_PATHS)
async def fill_backorders(info: Info, sku: str, limit: int | None = None) -> FillBackordersPayload:
    """The item's OPEN backorders, by order priority, then age; limit: 1 to 200 (50)."""
    result = await fill.fill_backorders(
        info.context.unit_of_work, sku, DEFAULT_FILL_LIMIT if limit is None else limit
    )
    return await _fill_payload(await info.context.after_change(), wanted(info), result)


async def _fill_payload(
    graph: Graph, below: Wanted, result: fill.FillResult
) -> FillBackordersPayload:
    backorders = await graph.by_id(
        graph.loaders.backorder_by_id, result.backorder_ids, graph.backorders, below["backorders"]
    )
    allocations = await graph.by_id(
        graph.loaders.allocation_by_id, result.allocation_ids, graph.allocations,
        below["allocations"],
    )  # fmt: skip
    return FillBackordersPayload(
        backorders=[backorders[i] for i in result.backorder_ids],
        allocations=[allocations[i] for i in result.allocation_ids],
    )


@errors_in_payload(PackAllocatedOrderPayload, ORDER_PATHS)
async def pack_allocated_order(
    info: Info, id: strawberry.ID, expected_version: int | None = None
) -> PackAllocatedOrderPayload:
    order_id = require_pk(id, "SalesOrder", Subject.ORDER)
    packed_ids = await orders.pack_allocated_order(
        info.context.unit_of_work, order_id, expected_version
    )
    graph, below = await info.context.after_change(), wanted(info)
    packed = await graph.by_id(
        graph.loaders.packed_line_by_id, packed_ids, graph.packed_lines, below["packedLines"]
    )
    return PackAllocatedOrderPayload(
        sales_order=await _order(graph, order_id, below), packed_lines=list(packed.values())
    )


@errors_in_payload(
    RemoveAllocationLinesPayload, {**VERSION_PATH, Subject.ALLOCATION: ("ids", INDEX)}
)
async def remove_allocation_lines(
    info: Info,
    ids: list[strawberry.ID],
    expected_version: int | None = None,
    reason: str | None = None,
) -> RemoveAllocationLinesPayload:
    """The reason is kept on the ledger's DEALLOCATE movements."""
    pks = [_pk_or_none(i, "Allocation") for i in ids]  # the use case names each bad one
    order_id = await orders.remove_allocation_lines(
        info.context.unit_of_work, pks, expected_version, reason
    )
    return RemoveAllocationLinesPayload(
        sales_order=await _order(await info.context.after_change(), order_id, wanted(info)),
        removed_ids=list(dict.fromkeys(ids)),
    )


def _pk_or_none(global_id: str, type_name: str) -> int | None:
    try:
        return require_pk(global_id, type_name, Subject.ALLOCATION)
    except DomainError:
        return None


async def _backorder_payload(
    info: Info, backorder_id: int, order_id: int, *, deleted: bool
) -> BackorderPayload:
    graph, below = await info.context.after_change(), wanted(info)
    if deleted:
        return BackorderPayload(
            sales_order=await _order(graph, order_id, below),
            deleted_id=global_id(Backorder, backorder_id),
        )
    backorder = await graph.by_id(
        graph.loaders.backorder_by_id, [backorder_id], graph.backorders, below["backorder"]
    )
    return BackorderPayload(
        backorder=backorder[backorder_id], sales_order=await _order(graph, order_id, below)
    )


@errors_in_payload(BackorderPayload, BACKORDER_PATHS)
async def cancel_backorder(
    info: Info, id: strawberry.ID, reason: str | None = None, expected_version: int | None = None
) -> BackorderPayload:
    """expectedVersion (the order's) is optional, as on every order mutation."""
    backorder_id = require_pk(id, "Backorder", Subject.BACKORDER)
    order_id = await orders.cancel_backorder(
        info.context.unit_of_work, backorder_id, reason, expected_version
    )
    return await _backorder_payload(info, backorder_id, order_id, deleted=False)


@errors_in_payload(BackorderPayload, BACKORDER_PATHS)
async def delete_backorder(
    info: Info, id: strawberry.ID, expected_version: int | None = None
) -> BackorderPayload:
    """The payload's backorder is null, since it is gone; its order is returned."""
    backorder_id = require_pk(id, "Backorder", Subject.BACKORDER)
    order_id = await orders.delete_backorder(
        info.context.unit_of_work, backorder_id, expected_version
    )
    return await _backorder_payload(info, backorder_id, order_id, deleted=True)
