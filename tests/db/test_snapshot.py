"""SnapshotUnitOfWork, a preview's unit of work: the database refuses any write in it,
it sees one moment whatever commits meanwhile, and it is never committed."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from db.database import Database
from db.repositories import SnapshotUnitOfWork
from services.ports import UnitOfWorkFactory
from tests.service import helpers


async def test_the_database_refuses_a_write_in_a_snapshot(
    database: Database, engine: AsyncEngine
) -> None:
    async with SnapshotUnitOfWork(database) as uow:
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await uow.catalog.add_item("NEW", "New", False, "EA")


async def test_a_snapshot_reads_one_moment_while_others_commit(
    database: Database, uow: UnitOfWorkFactory, engine: AsyncEngine
) -> None:
    await helpers.one_balance(uow, 5)
    async with uow() as reading:
        found = await reading.catalog.item_by_sku("WIDGET")
    assert found is not None
    widget = found.id

    async with SnapshotUnitOfWork(database) as snapshot:
        before = await snapshot.stock.candidates([widget])
        await helpers.stock(uow, "WIDGET", "L2", "BIN-1", 7)  # committed meanwhile
        during = await snapshot.stock.candidates([widget])

    async with SnapshotUnitOfWork(database) as later:
        after = await later.stock.candidates([widget])
    assert [c.available for c in before] == [c.available for c in during] == [5]
    assert sorted(c.available for c in after) == [5, 7]


async def test_a_snapshot_is_never_committed(database: Database, engine: AsyncEngine) -> None:
    async with SnapshotUnitOfWork(database) as uow:
        with pytest.raises(AssertionError, match="never committed"):
            await uow.commit()
