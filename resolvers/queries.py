"""Query resolvers: lookups by id or key, and keyset-paginated connections."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import TypeVar

import strawberry
from graphql import GraphQLError
from sqlalchemy import ColumnElement, RowMapping

from db.read import OrderFilter, Reader, backorder_filter
from resolvers.ids import parse_global_id, pk_of
from schema.enums import BackorderStatus
from schema.inputs import SalesOrderFilter
from schema.payloads import Connection, Edge, PageInfo
from schema.types import NODE_TYPES, Backorder, FromRow, Info, Item, Location, Node, SalesOrder

MAX_PAGE = 100
DEFAULT_PAGE = 20
T = TypeVar("T", bound=FromRow)


async def node(info: Info, id: strawberry.ID) -> Node | None:
    parsed = parse_global_id(id)
    if parsed is None or parsed[0] not in NODE_TYPES:
        return None
    row = await info.context.loaders.one(*parsed)
    return NODE_TYPES[parsed[0]].from_row(row) if row else None  # type: ignore[return-value]


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


def _cursor(pk: int) -> str:
    return base64.b64encode(f"cursor:{pk}".encode()).decode()


def _after(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    parsed = parse_global_id(cursor)
    if parsed is None or parsed[0] != "cursor":
        raise GraphQLError(
            "That is not a cursor this API gave out.", extensions={"code": "INVALID_INPUT"}
        )
    return parsed[1]


def _first(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE
    if not 0 <= first <= MAX_PAGE:
        raise GraphQLError(
            f"first must be between 0 and {MAX_PAGE}.", extensions={"code": "INVALID_INPUT"}
        )
    return first


async def _page(
    info: Info,
    cls: type[T],
    filters: Sequence[ColumnElement[bool]],
    first: int | None,
    after: str | None,
) -> Connection[T]:
    limit, after_pk = _first(first), _after(after)
    rows, total = await Reader(info.context.engine).page(cls.kind, filters, after_pk, limit)
    shown: list[RowMapping] = rows[:limit]
    edges = [Edge(cursor=_cursor(row["id"]), node=cls.from_row(row)) for row in shown]
    return Connection(
        edges=edges,
        total_count=total,
        page_info=PageInfo(
            has_next_page=len(rows) > limit,
            has_previous_page=after_pk is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )


async def sales_orders(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    filter: SalesOrderFilter | None = None,
) -> Connection[SalesOrder]:
    f = filter or SalesOrderFilter()
    clauses = OrderFilter(
        f.status.value if f.status else None, f.customer, f.sku, f.created_after, f.created_before
    ).clauses()
    return await _page(info, SalesOrder, clauses, first, after)


async def items(info: Info, first: int | None = None, after: str | None = None) -> Connection[Item]:
    return await _page(info, Item, [], first, after)


async def backorders(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    status: BackorderStatus | None = None,
) -> Connection[Backorder]:
    return await _page(
        info, Backorder, backorder_filter(status.value if status else None), first, after
    )
