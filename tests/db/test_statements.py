"""Every statement of the request path is valid on the migrated schema (PostgreSQL
prepares it), and the read statements select, name for name and in order, the fields of
the records they are made into: the SQL is plain text, so this is its type check."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import asyncpg
import pytest

from db import api_keys, reads, repositories
from db.database import dsn
from db.records import (
    AdjustmentRecord,
    AllocationRecord,
    BackorderRecord,
    BalanceRecord,
    ItemRecord,
    LineRecord,
    LocationRecord,
    LotRecord,
    OrderRecord,
    PackedLineRecord,
)

SQL_STARTS = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")


def statements() -> dict[str, str]:
    """Every SQL constant of db.reads, db.repositories and db.api_keys, by module and name."""
    found = {}
    for module in (reads, repositories, api_keys):
        for name, value in vars(module).items():
            public = name.isupper() and not name.startswith("_")  # _... are templates
            if public and isinstance(value, str) and value.lstrip().startswith(SQL_STARTS):
                found[f"{module.__name__}.{name}"] = value
    return found


RECORDS: dict[str, type] = {
    "ORDERS_BY_ID": OrderRecord, "ORDERS_BY_NUMBER": OrderRecord, "ORDER_PAGE": OrderRecord,
    "LINES_BY_ID": LineRecord, "LINES_OF_ORDERS": LineRecord,
    "ALLOCATIONS_BY_ID": AllocationRecord, "ALLOCATIONS_OF_ORDERS": AllocationRecord,
    "ALLOCATIONS_OF_LINES": AllocationRecord,
    "BACKORDERS_BY_ID": BackorderRecord, "BACKORDERS_OF_ORDERS": BackorderRecord,
    "BACKORDERS_OF_LINES": BackorderRecord, "BACKORDER_PAGE": BackorderRecord,
    "PACKED_LINES_BY_ID": PackedLineRecord, "PACKED_LINES_OF_ORDERS": PackedLineRecord,
    "PACKED_LINES_OF_LINES": PackedLineRecord,
    "ITEMS_BY_ID": ItemRecord, "ITEMS_BY_SKU": ItemRecord, "ITEM_PAGE": ItemRecord,
    "LOTS_BY_ID": LotRecord,
    "LOCATIONS_BY_ID": LocationRecord, "LOCATIONS_BY_CODE": LocationRecord,
    "BALANCES_BY_ID": BalanceRecord, "BALANCES_OF_ITEMS": BalanceRecord,
    "BALANCE_PAGE": BalanceRecord, "ADJUSTMENTS_BY_ID": AdjustmentRecord,
    "ADD_ITEM": ItemRecord, "ADD_LOCATION": LocationRecord, "ADJUST": BalanceRecord,
    "RECORD_ADJUSTMENT": AdjustmentRecord, "CREATE_ORDER": OrderRecord,
}  # fmt: skip


def columns(record: type) -> list[str]:
    """The record's fields as a statement selects them: a record within it (an allocation
    line's lot and location) stands for its own fields, in order."""
    nested = {"lot": LotRecord, "location": LocationRecord}
    found: list[str] = []
    for field in dataclasses.fields(record):
        inner = nested.get(field.name)
        found += columns(inner) if inner and record is not LotRecord else [field.name]
    return found


@pytest.fixture
async def connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(dsn(database_url))
    yield connection
    await connection.close()


def test_the_walk_finds_the_statements_of_both_modules() -> None:
    found = statements()
    assert "db.reads.LINES_OF_ORDERS" in found
    assert "db.repositories.CLAIM" in found
    assert "db.api_keys.KEY_BY_PREFIX" in found
    assert len(found) > 50
    assert {f"db.reads.{n}" for n in RECORDS} | {f"db.repositories.{n}" for n in RECORDS} >= {
        name for name in found if name.rpartition(".")[2] in RECORDS
    }


@pytest.mark.parametrize(("name", "sql"), list(statements().items()))
async def test_each_statement_prepares_on_the_migrated_schema(
    connection: asyncpg.Connection, name: str, sql: str
) -> None:
    prepared = await connection.prepare(sql)

    attributes = [a.name for a in prepared.get_attributes()]
    record = RECORDS.get(name.rpartition(".")[2])
    if record is not None:
        fields = columns(record)
        # Columns computed in SQL have no name of their own; they stand where the field is.
        named = [(a, f) for a, f in zip(attributes, fields, strict=True) if a != "?column?"]
        assert all(a == f for a, f in named), f"{name} selects {attributes}, {record} has {fields}"
