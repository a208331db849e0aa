"""The bench's databases and data, loaded with SQL (generate_series), not through the API.

Items are ITEM-0000001...; each has one lot. The small database keeps one balance per
item; the large one keeps large_balances_per_item balances per lot (one per location),
only the first of which has stock, like a warehouse whose stock has moved on. Either
way an allocation of one line finds exactly one candidate balance, so the two
databases differ in size only. `bench_items` numbers the items 0..n-1 (slots).

Order k of a batch (k = 0, 1, ...) takes its line l from slot ((k * lines + l) * STRIDE)
mod n. STRIDE is prime to n, so the (say) 64 orders in flight at once never share an
item, and in the large database consecutive orders land far apart.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.database import Database
from db.engine import create_engine, migrate
from db.repositories import SqlUnitOfWork
from services import catalog, orders

STRIDE = 7919  # a prime: prime to 10^3 and 10^5
STOCK = 1_000_000_000  # ample: no allocation of the bench ever runs short
HOT_SKU = "HOT"
SHORT_SKU = "SHORT"  # no stock: the reads' orders get a backorder on it
_batches = itertools.count(1)


@dataclass(frozen=True)
class Orders:
    """A batch of fresh (OPEN) orders with consecutive ids."""

    first: int
    last: int
    lines: int

    @property
    def count(self) -> int:
        return self.last - self.first + 1


def database_url(server_url: str, name: str) -> str:
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def execute(engine: AsyncEngine, sql: str, **params: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(sql), params)


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return await conn.scalar(text(sql), params)


async def admin(server_url: str, *statements: str) -> None:
    """Statements outside a transaction (CREATE/DROP DATABASE, VACUUM)."""
    engine = create_engine(server_url, pool_size=1, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def create_database(server_url: str, name: str) -> str:
    """A fresh, migrated database; its URL."""
    await admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin(server_url, f'CREATE DATABASE "{name}"')
    url = database_url(server_url, name)
    await migrate(url)
    return url


async def load_catalog(engine: AsyncEngine, items: int, balances_per_item: int) -> None:
    statements = [
        """INSERT INTO locations (code, name, pick_sequence)
           SELECT 'BIN-' || g, 'Bin ' || g, g FROM generate_series(1, :per_item) g""",
        """INSERT INTO items (sku, name)
           SELECT 'ITEM-' || lpad(g::text, 7, '0'), 'Item ' || g
           FROM generate_series(1, :items) g""",
        """INSERT INTO lots (item_id, lot_number, received_at)
           SELECT id, 'LOT-1', timestamptz '2026-01-01' FROM items ORDER BY id""",
        """INSERT INTO inventory_balances (item_id, lot_id, location_id, on_hand)
           SELECT lot.item_id, lot.id, loc.id,
                  CASE WHEN loc.pick_sequence = 1 THEN :stock ELSE 0 END
           FROM lots lot CROSS JOIN locations loc ORDER BY lot.id, loc.id""",
        """CREATE TABLE bench_items (slot int PRIMARY KEY, item_id bigint NOT NULL)""",
        """INSERT INTO bench_items SELECT row_number() OVER (ORDER BY id) - 1, id FROM items""",
    ]
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(
                text(statement), {"items": items, "per_item": balances_per_item, "stock": STOCK}
            )


async def add_hot_item(engine: AsyncEngine) -> None:
    """One item, one lot, one balance with ample stock: every hot order wants it."""
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO items (sku, name) VALUES (:sku, 'Hot item')"), {"sku": HOT_SKU}
        )
        await conn.execute(
            text(
                """INSERT INTO lots (item_id, lot_number, received_at)
                   SELECT id, 'HOT-1', timestamptz '2026-01-01' FROM items WHERE sku = :sku"""
            ),
            {"sku": HOT_SKU},
        )
        await conn.execute(
            text(
                """INSERT INTO inventory_balances (item_id, lot_id, location_id, on_hand)
                   SELECT lot.item_id, lot.id, (SELECT min(id) FROM locations), :stock
                   FROM lots lot JOIN items i ON i.id = lot.item_id WHERE i.sku = :sku"""
            ),
            {"sku": HOT_SKU, "stock": STOCK},
        )


async def create_orders(
    engine: AsyncEngine, count: int, lines: int, *, hot: bool = False, quantity: int = 1
) -> Orders:
    """count OPEN orders (version 1) of `lines` lines of `quantity` each; hot: 1 line of HOT."""
    batch = next(_batches)
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                text(
                    """WITH made AS (
                           INSERT INTO sales_orders (number, customer, status, version, actor,
                                                     updated_by)
                           SELECT 'BENCH-' || :batch || '-' || g, 'bench', 'OPEN', 1,
                                  'system', 'system'
                           FROM generate_series(1, :count) g ORDER BY g
                           RETURNING id
                       ) SELECT min(id), max(id), count(*) FROM made"""
                ),
                {"batch": str(batch), "count": count},
            )
        ).one()
        first, last, made = int(row[0]), int(row[1]), int(row[2])
        if last - first + 1 != made:
            raise RuntimeError("order ids are not consecutive; is another client writing?")
        if hot:
            await conn.execute(
                text(
                    """INSERT INTO sales_order_lines (order_id, line_number, item_id, quantity)
                       SELECT o, 1, (SELECT id FROM items WHERE sku = :sku), :quantity
                       FROM generate_series(CAST(:first AS bigint), :last) o"""
                ),
                {"sku": HOT_SKU, "first": first, "last": last, "quantity": quantity},
            )
        else:
            await conn.execute(
                text(
                    """INSERT INTO sales_order_lines (order_id, line_number, item_id, quantity)
                       SELECT o, l + 1, bi.item_id, :quantity
                       FROM generate_series(CAST(:first AS bigint), :last) o
                       CROSS JOIN generate_series(0, :lines - 1) l
                       JOIN bench_items bi ON bi.slot = (((o - :first) * :lines + l) * :stride)
                                                        % (SELECT count(*) FROM bench_items)
                       ORDER BY o, l"""
                ),
                {
                    "first": first,
                    "last": last,
                    "lines": lines,
                    "stride": STRIDE,
                    "quantity": quantity,
                },
            )
    return Orders(first, last, 1 if hot else lines)


async def add_history(engine: AsyncEngine, count: int) -> None:
    """count orders of 2 lines that were allocated long ago (allocation lines, balances'
    allocated and the orders' status and version as allocateOrder leaves them)."""
    done = await create_orders(engine, count, 2)
    params = {"first": done.first, "last": done.last}
    await execute(
        engine,
        """INSERT INTO allocations (order_id, line_id, balance_id, quantity, actor)
           SELECT l.order_id, l.id, b.id, l.quantity, 'system'
           FROM sales_order_lines l
           JOIN inventory_balances b ON b.item_id = l.item_id AND b.on_hand > b.allocated
           WHERE l.order_id BETWEEN :first AND :last ORDER BY l.id""",
        **params,
    )
    await execute(
        engine,
        """UPDATE inventory_balances b SET allocated = b.allocated + s.quantity,
                  version = b.version + 1
           FROM (SELECT balance_id, sum(quantity) AS quantity FROM allocations
                 WHERE order_id BETWEEN :first AND :last GROUP BY balance_id) s
           WHERE b.id = s.balance_id""",
        **params,
    )
    await execute(
        engine,
        """UPDATE sales_orders SET status = 'ALLOCATED', version = 2
           WHERE id BETWEEN :first AND :last""",
        **params,
    )


async def allocated(engine: AsyncEngine, batch: Orders) -> int:
    """How many orders of the batch have been allocated (each at most once)."""
    found = await scalar(
        engine,
        """SELECT count(*) FROM sales_orders
           WHERE id BETWEEN :first AND :last AND status <> 'OPEN'""",
        first=batch.first,
        last=batch.last,
    )
    return int(found)


async def add_read_orders(engine: AsyncEngine, count: int, lines: int) -> list[str]:
    """Orders to read, through the use cases: lines - 1 lines of 3 units in stock and one
    line of SHORT (no stock: a backorder of 5); every other order packed. Their numbers."""
    database = Database(engine.url.render_as_string(hide_password=False), size=1)
    uow = lambda: SqlUnitOfWork(database)  # noqa: E731 - a factory, as the app makes one
    if await scalar(engine, "SELECT count(*) FROM items WHERE sku = :s", s=SHORT_SKU) == 0:
        await catalog.create_item(uow, SHORT_SKU, "Out of stock", False, "EA")
    skus = [
        f"ITEM-{n:07d}"
        for n in await _column(
            engine, "SELECT slot + 1 FROM bench_items ORDER BY slot LIMIT :n", n=lines - 1
        )
    ]
    numbers = []
    try:
        for index in range(count):
            number = f"READ-{lines}-{index:03d}"
            wanted = [orders.LineInput(sku, 3) for sku in skus]
            wanted.append(orders.LineInput(SHORT_SKU, 5))
            order_id = await orders.create_sales_order(uow, "reader", number, wanted)
            await orders.allocate_order(uow, order_id)
            if index % 2 == 0:
                await orders.pack_allocated_order(uow, order_id, None)
            numbers.append(number)
    finally:
        await database.close()
    return numbers


async def _column(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).scalars())


async def vacuum_analyze(server_url: str, name: str) -> None:
    await admin(database_url(server_url, name), "VACUUM ANALYZE")
