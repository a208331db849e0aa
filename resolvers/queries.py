"""Query resolvers: lookups by id or key, and keyset-paginated connections."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from typing import TypeVar

import strawberry
from graphql import GraphQLError
from sqlalchemy import ColumnElement

from db.read import OrderFilter, PageWindow, Reader, backorder_filter, inventory_filter
from resolvers.ids import parse_global_id, pk_of
from schema.enums import BackorderStatus
from schema.inputs import SalesOrderFilter
from schema.payloads import Connection, Edge, PageInfo
from schema.types import (
    NODE_TYPES,
    Backorder,
    FromRow,
    Info,
    InventoryBalance,
    Item,
    Location,
    Node,
    SalesOrder,
)

MAX_PAGE = 100
DEFAULT_PAGE = 20
T = TypeVar("T", bound=FromRow)


async def node(info: Info, id: strawberry.ID) -> Node | None:
    parsed = parse_global_id(id)
    if parsed is None or parsed[0] not in NODE_TYPES:
        return None
    row = await info.context.loaders.one(*parsed)
    return NODE_TYPES[parsed[0]].from_row(row) if row else None  # type: ignore[return-value]


async def nodes(info: Info, ids: list[strawberry.ID]) -> list[Node | None]:
    """In the order asked; null where an id names nothing. Batched per type."""
    if len(ids) > MAX_PAGE:
        raise _invalid(f"At most {MAX_PAGE} ids.")
    return list(await asyncio.gather(*(node(info, i) for i in ids)))


async def sales_order(
    info: Info, id: strawberry.ID | None = None, number: str | None = None
) -> SalesOrder | None:
    if id is not None:
        pk = pk_of(id, "SalesOrder")
        row = await info.context.loaders.one("SalesOrder", pk) if pk else None
    elif number is not None:
        rows = await info.context.loaders.many("SalesOrder", "number", number)
        row = rows[0] if rows else None
    else:
        raise GraphQLError(
            "Give the sales order's id or its number.", extensions={"code": "INVALID_INPUT"}
        )
    return SalesOrder.from_row(row) if row else None


async def item(info: Info, sku: str) -> Item | None:
    rows = await info.context.loaders.many("Item", "sku", sku)
    return Item.from_row(rows[0]) if rows else None


async def location(info: Info, code: str) -> Location | None:
    rows = await info.context.loaders.many("Location", "code", code)
    return Location.from_row(rows[0]) if rows else None


def _cursor(kind: str, pk: int) -> str:
    return base64.b64encode(f"{kind}Cursor:{pk}".encode()).decode()


def _invalid(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "INVALID_INPUT"})


def _cursor_pk(kind: str, cursor: str | None) -> int | None:
    if cursor is None:
        return None
    parsed = parse_global_id(cursor)
    if parsed is None or parsed[0] != f"{kind}Cursor":
        raise _invalid("That is not a cursor this connection gave out.")
    return parsed[1]


def _window(
    kind: str, first: int | None, after: str | None, last: int | None, before: str | None
) -> PageWindow:
    """Relay's arguments as a window: `first` (after `after`) or `last` (before `before`)."""
    if first is not None and last is not None:
        raise _invalid("Give first or last, not both.")
    for name, size in (("first", first), ("last", last)):
        if size is not None and not 0 <= size <= MAX_PAGE:
            raise _invalid(f"{name} must be between 0 and {MAX_PAGE}.")
    return PageWindow(
        size=last if last is not None else first if first is not None else DEFAULT_PAGE,
        after=_cursor_pk(kind, after),
        before=_cursor_pk(kind, before),
        backwards=last is not None,
    )


async def _page(
    info: Info, cls: type[T], filters: Sequence[ColumnElement[bool]], window: PageWindow
) -> Connection[T]:
    page = await Reader(info.context.engine).page(cls.kind, filters, window)
    info.context.loaders.prime(cls.kind, page.rows)
    edges = [Edge(cursor=_cursor(cls.kind, row["id"]), node=cls.from_row(row)) for row in page.rows]
    return Connection(
        edges=edges, total_count=page.total,
        page_info=PageInfo(
            # Only the side that was read is known exactly; the other side is known
            # to exist when the client came from a cursor on it.
            has_next_page=page.more if not window.backwards else window.before is not None,
            has_previous_page=page.more if window.backwards else window.after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )  # fmt: skip


async def sales_orders(
    info: Info,
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    filter: SalesOrderFilter | None = None,
) -> Connection[SalesOrder]:
    f = filter or SalesOrderFilter()
    clauses = OrderFilter(
        f.status.value if f.status else None, f.customer, f.sku, f.created_after, f.created_before
    ).clauses()
    return await _page(
        info, SalesOrder, clauses, _window(SalesOrder.kind, first, after, last, before)
    )


async def items(
    info: Info,
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Connection[Item]:
    return await _page(info, Item, [], _window(Item.kind, first, after, last, before))


async def backorders(
    info: Info,
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    status: BackorderStatus | None = None,
) -> Connection[Backorder]:
    return await _page(
        info,
        Backorder,
        backorder_filter(status.value if status else None),
        _window(Backorder.kind, first, after, last, before),
    )


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
    return await _page(
        info,
        InventoryBalance,
        inventory_filter(sku, location_code, in_stock_only),
        _window(InventoryBalance.kind, first, after, last, before),
    )
