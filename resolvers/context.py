"""The per-request context: the unit-of-work factory for changes, loaders for reads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from strawberry.dataloader import DataLoader

from db.read import Reader
from services.ports import UnitOfWorkFactory

Rows = list[RowMapping]


def _grouping(
    fetch: Callable[[list[Any]], Awaitable[Rows]],
    column: str,
) -> Callable[[list[Any]], Awaitable[list[Rows]]]:
    async def load(keys: list[Any]) -> list[Rows]:
        groups: dict[Any, Rows] = {key: [] for key in keys}
        for row in await fetch(keys):
            groups[row[column]].append(row)
        return [groups[key] for key in keys]

    return load


class Loaders:
    """DataLoaders made on first use and kept for one request, so every nested
    field of a kind costs one query per level, not one per row."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self._loaders: dict[Hashable, DataLoader[Any, Any]] = {}

    def _get(self, key: Hashable, make: Callable[[], DataLoader[Any, Any]]) -> DataLoader[Any, Any]:
        if key not in self._loaders:
            self._loaders[key] = make()
        return self._loaders[key]

    def by(self, kind: str, column: str = "id") -> DataLoader[Any, Rows]:
        """Rows of kind whose column equals the key (a list per key)."""

        async def fetch(keys: Collection[Any]) -> Rows:
            rows = await self.reader.where_in(kind, column, keys)
            if column != "id":
                self.prime(kind, rows)
            return rows

        return self._get((kind, column), lambda: DataLoader(_grouping(fetch, column)))

    def prime(self, kind: str, rows: Rows) -> None:
        """Rows already read by another key answer later look-ups by id, so a child
        asking for its parent (an allocation line's order line) costs no query."""
        by_id = self.by(kind)
        for row in rows:
            by_id.prime(row["id"], [row])

    async def one(self, kind: str, pk: int) -> RowMapping | None:
        rows = await self.by(kind).load(pk)
        return rows[0] if rows else None

    async def many(self, kind: str, column: str, key: Any) -> Sequence[RowMapping]:
        return list(await self.by(kind, column).load(key))

    def allocations_of_packed_lines(self) -> DataLoader[int, Rows]:
        return self._get(
            "packed",
            lambda: DataLoader(
                _grouping(self.reader.allocations_of_packed_lines, "packed_line_id")
            ),
        )

    def item_totals(self) -> DataLoader[int, Rows]:
        return self._get(
            "totals", lambda: DataLoader(_grouping(self.reader.item_totals, "item_id"))
        )


@dataclass
class Context:
    engine: AsyncEngine
    unit_of_work: UnitOfWorkFactory
    request: Request | None = None
    response: Response | None = None
    loaders: Loaders = field(init=False)
    _changed_by: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.loaders = Loaders(Reader(self.engine))

    def after_change(self, mutation: str) -> Loaders:
        """Fresh loaders once per mutation field (by its response key), so a payload
        never shows rows cached before its change, while one payload's reads still
        share their batches (several mutations may run in one request)."""
        if self._changed_by != mutation:
            self.loaders = Loaders(Reader(self.engine))
            self._changed_by = mutation
        return self.loaders
