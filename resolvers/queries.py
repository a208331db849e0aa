"""Query resolvers: lookups by id or key, and keyset-paginated connections. Each builds
its objects for what the request selected below it (resolvers/graph.py)."""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

import strawberry
from graphql import GraphQLError

from db import reads
from resolvers.access import NODE_SCOPES, forbidden
from resolvers.context import Info
from resolvers.ids import parse_global_id, pk_of
from resolvers.loaders import Stored
from resolvers.selection import Wanted, wanted
from schema.enums import BackorderStatus, SalesOrderOrder
from schema.inputs import MovementFilter, SalesOrderFilter
from schema.payloads import Connection, Edge, PageInfo
from schema.types import (
    AllocationPreview,
    AvailableToPromise,
    Backorder,
    InventoryBalance,
    Item,
    Location,
    Movement,
    Node,
    SalesOrder,
)
from services import planning
from services.domain.errors import DomainError
from services.domain.planner import AllocationStrategy

MAX_PAGE = 100
DEFAULT_PAGE = 20
T = TypeVar("T")
S = TypeVar("S", bound=Stored)


def _invalid(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "INVALID_INPUT"})


def _not_found(message: str, argument: str) -> GraphQLError:
    """A query's NOT_FOUND, naming the argument at fault as a refused argument does."""
    return GraphQLError(message, extensions={"code": "NOT_FOUND", "field": [argument]})


async def _nodes(info: Info, ids: Sequence[str]) -> list[Node | None]:
    """In the order asked; None where an id names nothing. One batch per type. Each
    type needs its read scope (a refusal is the whole field's)."""
    kinds = info.context.graph.node_kinds()
    parsed = [parse_global_id(i) for i in ids]
    pks: dict[str, list[int]] = defaultdict(list)
    for found in parsed:
        if found is not None and found[0] in kinds:
            pks[found[0]].append(found[1])
    credential = info.context.credential
    for kind in pks:
        if not credential.may(NODE_SCOPES[kind]):
            raise GraphQLError(forbidden(NODE_SCOPES[kind]), extensions={"code": "FORBIDDEN"})
    below = wanted(info)
    built: dict[str, Mapping[int, Node]] = {}
    for kind, keys in pks.items():  # one at a time: they share the request's connection
        built[kind] = await kinds[kind](keys, below)
    return [built[f[0]].get(f[1]) if f is not None and f[0] in built else None for f in parsed]


async def node(info: Info, id: strawberry.ID) -> Node | None:
    (found,) = await _nodes(info, [id])
    return found


async def nodes(info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
    """At most 100 ids: resolvers/arguments.py refuses more before this runs."""
    return await _nodes(info, ids)


async def sales_order(
    info: Info, id: strawberry.ID | None = None, number: str | None = None
) -> SalesOrder | None:
    graph = info.context.graph
    loaders = graph.loaders
    if id is not None:
        pk = pk_of(id, SalesOrder.__name__)
        record = (await loaders.order_by_id.load([pk]))[pk] if pk is not None else None
    elif number is not None:
        record = (await loaders.order_by_number.load([number]))[number]
    else:
        raise _invalid("Give the sales order's id or its number.")
    return (await graph.orders([record], wanted(info)))[0] if record else None


async def item(info: Info, sku: str) -> Item | None:
    graph = info.context.graph
    record = (await graph.loaders.item_by_sku.load([sku]))[sku]
    return (await graph.items([record], wanted(info)))[0] if record else None


async def location(info: Info, code: str) -> Location | None:
    graph = info.context.graph
    record = (await graph.loaders.location_by_code.load([code]))[code]
    return (await graph.locations([record], wanted(info)))[0] if record else None


# -- connections -------------------------------------------------------------------------


def _cursor(kind: str, pk: int) -> str:
    return base64.b64encode(f"{kind}Cursor:{pk}".encode()).decode()


def _cursor_pk(kind: str, cursor: str | None) -> int | None:
    if cursor is None:
        return None
    parsed = parse_global_id(cursor)
    if parsed is None or parsed[0] != f"{kind}Cursor":
        raise _invalid("That is not a cursor this connection gave out.")
    return parsed[1]


def _window(
    kind: str,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    *,
    newest_first: bool = False,
) -> reads.PageWindow:
    """Relay's arguments as a window: `first` (after `after`) or `last` (before `before`)."""
    if first is not None and last is not None:
        raise _invalid("Give first or last, not both.")
    for name, size in (("first", first), ("last", last)):
        if size is not None and not 0 <= size <= MAX_PAGE:
            raise _invalid(f"{name} must be between 0 and {MAX_PAGE}.")
    return reads.PageWindow(
        size=last if last is not None else first if first is not None else DEFAULT_PAGE,
        after=_cursor_pk(kind, after),
        before=_cursor_pk(kind, before),
        backwards=last is not None,
        newest_first=newest_first,
    )


async def _connection(
    info: Info,
    *,
    kind: type[Node],
    page: reads.Page[S],
    build: Callable[[Sequence[S], Wanted], Awaitable[list[T]]],
    window: reads.PageWindow,
) -> Connection[T]:
    below = wanted(info)
    built = await build(page.rows, below["edges"]["node"].union(below["nodes"]))
    cursors = [_cursor(kind.__name__, row.id) for row in page.rows]
    return Connection(
        edges=[Edge(cursor=c, node=n) for c, n in zip(cursors, built, strict=True)],
        nodes=built,
        total_count=page.total,
        page_info=PageInfo(
            # Only the side that was read is known exactly; the other side is known
            # to exist when the client came from a cursor on it.
            has_next_page=page.more if not window.backwards else window.before is not None,
            has_previous_page=page.more if window.backwards else window.after is not None,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
        ),
    )


async def sales_orders(
    info: Info,
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    filter: SalesOrderFilter | None = None,
    order_by: SalesOrderOrder = SalesOrderOrder.CREATED,
) -> Connection[SalesOrder]:
    """By creation (the default), or by PRIORITY: the order fillBackorders fills in."""
    f = filter or SalesOrderFilter()
    window = _window(SalesOrder.__name__, first, after, last, before)
    graph = info.context.graph
    page = await reads.orders_page(
        info.context.session,
        reads.order_filter(
            f.status.value if f.status else None, f.customer, f.sku, f.created_after,
            f.created_before, min_priority=f.min_priority,
        ),
        window,
        by_priority=order_by is SalesOrderOrder.PRIORITY,
    )  # fmt: skip
    graph.loaders.order_by_id.remember(page.rows)
    return await _connection(info, kind=SalesOrder, page=page, build=graph.orders, window=window)


async def items(
    info: Info,
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Connection[Item]:
    window = _window(Item.__name__, first, after, last, before)
    graph = info.context.graph
    page = await reads.items_page(info.context.session, window)
    graph.loaders.item_by_id.remember(page.rows)
    return await _connection(info, kind=Item, page=page, build=graph.items, window=window)


async def backorders(
    info: Info,
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    status: BackorderStatus | None = None,
) -> Connection[Backorder]:
    window = _window(Backorder.__name__, first, after, last, before)
    graph = info.context.graph
    page = await reads.backorders_page(
        info.context.session, reads.backorder_filter(status.value if status else None), window
    )
    graph.loaders.backorder_by_id.remember(page.rows)
    return await _connection(info, kind=Backorder, page=page, build=graph.backorders, window=window)


async def inventory(
    info: Info,
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    sku: str | None = None,
    location_code: str | None = None,
    in_stock_only: bool = False,
) -> Connection[InventoryBalance]:
    """Balances (one per lot and location), for stock screens and partner syncs."""
    window = _window(InventoryBalance.__name__, first, after, last, before)
    graph = info.context.graph
    page = await reads.balances_page(
        info.context.session, reads.balance_filter(sku, location_code, in_stock_only), window
    )
    graph.loaders.balance_by_id.remember(page.rows)
    return await _connection(
        info, kind=InventoryBalance, page=page, build=graph.balances, window=window
    )


async def movements(
    info: Info,
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    filter: MovementFilter | None = None,
) -> Connection[Movement]:
    """The ledger, newest first: every change to the stock, with who and why."""
    f = filter or MovementFilter()
    window = _window(Movement.__name__, first, after, last, before, newest_first=True)
    order_id = pk_of(f.sales_order_id, SalesOrder.__name__) if f.sales_order_id else None
    if f.sales_order_id is not None and order_id is None:
        raise _invalid("That is not a sales order's id.")
    graph = info.context.graph
    page = await reads.movements_page(
        info.context.session,
        reads.movement_filter(
            f.sku, f.lot_number, f.location_code, order_id, f.kind.value if f.kind else None
        ),
        window,
    )
    graph.loaders.movement_by_id.remember(page.rows)
    return await _connection(info, kind=Movement, page=page, build=graph.movements, window=window)


# -- planning (SPEC section 9) ----------------------------------------------------------


async def preview_allocation(
    info: Info, id: strawberry.ID, strategy: AllocationStrategy | None = None
) -> AllocationPreview:
    """What allocateOrder would do now, from one read-only snapshot: nothing written,
    no row locked."""
    order_id = pk_of(id, SalesOrder.__name__)
    if order_id is None:
        raise _not_found("Sales order not found.", "id")
    context = info.context
    try:
        async with context.snapshot() as snapshot:
            preview = await planning.preview_allocation(
                lambda: snapshot, order_id, strategy or AllocationStrategy.FEFO
            )
    except DomainError as error:  # the one it raises: no such order
        raise _not_found(error.message, "id") from None
    # A builder of its own, primed with what the snapshot read: the preview shows the
    # order as it planned from it, not as a later read might find it.
    return await context.primed(snapshot.written).allocation_preview(preview, wanted(info))


async def available_to_promise(
    info: Info, sku: str, location_code: str | None = None, lot_number: str | None = None
) -> AvailableToPromise:
    """One statement, whatever the number of balances and backorders."""
    record = await reads.available_to_promise(info.context.session, sku, location_code, lot_number)
    if record is None:
        raise _not_found(f"Item {sku!r} not found.", "sku")
    if not record.location_known:
        raise _not_found(f"Location {location_code!r} not found.", "locationCode")
    if not record.lot_known:
        raise _not_found(f"Lot {lot_number!r} of item {sku!r} not found.", "lotNumber")
    return await info.context.graph.available_to_promise(record, wanted(info))
