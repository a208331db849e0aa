"""The floor: allocateOrder's transaction in plain asyncpg, no GraphQL, no SQLAlchemy.

The same statements, in the same order, that services.orders.allocate_order issues
through db/repositories.py for an order whose lines all have stock: load the order
(version, lines, allocation lines, backorders), read the candidate balances, plan
(FEFO, greedy), reserve with the guarded statement, claim the order (version + 1),
insert one allocation line per pick; BEGIN and COMMIT around them. Each client holds
one connection of its own for the whole run, so nothing is spent on a pool.

Run by bench/run.py as a process of its own (pinned like the server):
    python -m bench.floor '{"dsn": ..., "first": 1, "last": 9000, "clients": 16, ...}'
and prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

VERSION = "SELECT version FROM sales_orders WHERE id = $1"
LINES = """
SELECT l.id, l.line_number, l.item_id, i.serialized, l.quantity, l.quantity_cancelled
FROM sales_order_lines l JOIN items i ON i.id = l.item_id
WHERE l.order_id = $1 ORDER BY l.line_number"""
ALLOCATIONS = """
SELECT a.id, a.line_id, a.balance_id, b.lot_id, b.location_id, a.quantity, a.quantity_packed
FROM allocations a JOIN inventory_balances b ON b.id = a.balance_id
WHERE a.order_id = $1 ORDER BY a.id"""
BACKORDERS = """
SELECT id, line_id, quantity, quantity_allocated, status, cancel_reason
FROM backorders WHERE order_id = $1 ORDER BY id"""
CANDIDATES = """
SELECT b.id, b.item_id, b.lot_id, b.location_id, b.on_hand - b.allocated AS available,
       lot.received_at, lot.expires_at, loc.pick_sequence
FROM inventory_balances b
JOIN lots lot ON lot.id = b.lot_id JOIN locations loc ON loc.id = b.location_id
WHERE b.item_id = ANY($1::bigint[]) AND b.on_hand > b.allocated"""
RESERVE = """
WITH wanted AS (
    SELECT unnest($1::bigint[]) AS id, unnest($2::int[]) AS qty
), locked AS (
    SELECT b.id FROM inventory_balances b JOIN wanted w ON w.id = b.id
    ORDER BY b.id FOR NO KEY UPDATE OF b
)
UPDATE inventory_balances b SET allocated = b.allocated + w.qty, version = b.version + 1
FROM wanted w
WHERE b.id = w.id AND b.id IN (SELECT id FROM locked) AND b.on_hand - b.allocated >= w.qty
RETURNING b.id"""
CLAIM = """
UPDATE sales_orders SET version = version + 1, status = $3, updated_at = now()
WHERE id = $1 AND version = $2 RETURNING version"""
INSERT_ALLOCATION = """
INSERT INTO allocations (order_id, line_id, balance_id, quantity)
VALUES ($1, $2, $3, $4) RETURNING id"""

_NO_EXPIRY = datetime.max.replace(tzinfo=UTC)


class ConflictError(Exception):
    """The order or a balance changed under us (never in the bench's runs)."""


async def allocate(conn: Any, order_id: int) -> int:
    """Allocate one order in one transaction; the number of statements it ran."""
    async with conn.transaction():
        version = await conn.fetchval(VERSION, order_id)
        lines = await conn.fetch(LINES, order_id)
        allocations = await conn.fetch(ALLOCATIONS, order_id)
        await conn.fetch(BACKORDERS, order_id)
        allocated: dict[int, int] = defaultdict(int)
        for allocation in allocations:
            allocated[allocation["line_id"]] += allocation["quantity"]
        demand = [
            (line["id"], line["item_id"], open_demand)
            for line in lines
            if not line["serialized"]
            and (
                open_demand := line["quantity"] - allocated[line["id"]] - line["quantity_cancelled"]
            )
            > 0
        ]
        if not demand:
            return 4
        candidates = await conn.fetch(CANDIDATES, list({item for _, item, _ in demand}))
        # FEFO, then FIFO, then pick sequence, then id: the planner's default order.
        candidates.sort(
            key=lambda c: (
                c["expires_at"] is None,
                c["expires_at"] or _NO_EXPIRY,
                c["received_at"],
                c["pick_sequence"],
                c["id"],
            )
        )
        available = {c["id"]: c["available"] for c in candidates}
        by_item: dict[int, list[Any]] = defaultdict(list)
        for candidate in candidates:
            by_item[candidate["item_id"]].append(candidate)
        picks: list[tuple[int, int, int]] = []  # line, balance, quantity
        for line_id, item_id, open_demand in demand:
            wanted = open_demand
            for candidate in by_item[item_id]:
                if wanted == 0:
                    break
                take = min(wanted, available[candidate["id"]])
                if take > 0:
                    available[candidate["id"]] -= take
                    picks.append((line_id, candidate["id"], take))
                    wanted -= take
            if wanted:
                raise ConflictError(
                    f"line {line_id} is short of {wanted}: the bench gives ample stock"
                )
        by_balance: dict[int, int] = defaultdict(int)
        for _, balance_id, quantity in picks:
            by_balance[balance_id] += quantity
        ids = sorted(by_balance)
        reserved = await conn.fetch(RESERVE, ids, [by_balance[i] for i in ids])
        if len(reserved) != len(ids):
            raise ConflictError("a balance changed under us")
        if await conn.fetchval(CLAIM, order_id, version, "ALLOCATED") is None:
            raise ConflictError("the order changed under us")
        for line_id, balance_id, quantity in picks:
            await conn.fetchval(INSERT_ALLOCATION, order_id, line_id, balance_id, quantity)
        return 7 + len(picks)


@dataclass
class Run:
    next_id: int
    last_id: int
    measure_from: float
    measure_to: float
    latencies: list[float] = field(default_factory=list)
    statements: set[int] = field(default_factory=set)
    exhausted_at: float | None = None

    def take(self) -> int | None:
        if self.next_id > self.last_id:
            return None
        self.next_id += 1
        return self.next_id - 1


async def client(dsn: dict[str, Any], run: Run) -> None:
    conn = await asyncpg.connect(**dsn)
    try:
        while time.perf_counter() < run.measure_to:
            order_id = run.take()
            if order_id is None:
                run.exhausted_at = run.exhausted_at or time.perf_counter()
                return
            started = time.perf_counter()
            run.statements.add(await allocate(conn, order_id))
            finished = time.perf_counter()
            if run.measure_from <= finished <= run.measure_to:
                run.latencies.append(finished - started)
    finally:
        await conn.close()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


async def measure(options: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter() + 0.5  # time to connect
    run = Run(
        options["first"],
        options["last"],
        start + options["warmup"],
        start + options["warmup"] + options["seconds"],
    )
    cpu: list[float] = []

    async def clock() -> None:  # this process's CPU time over the measured window
        await asyncio.sleep(run.measure_from - time.perf_counter())
        cpu.append(time.process_time())
        await asyncio.sleep(run.measure_to - time.perf_counter())
        cpu.append(time.process_time())

    await asyncio.gather(clock(), *(client(options["dsn"], run) for _ in range(options["clients"])))
    until = min(run.measure_to, run.exhausted_at or run.measure_to)
    seconds = max(until - run.measure_from, 1e-9)
    return {
        "transactions": len(run.latencies),
        "seconds": seconds,
        "rate": len(run.latencies) / seconds,
        "p50_ms": percentile(run.latencies, 0.50) * 1000,
        "p99_ms": percentile(run.latencies, 0.99) * 1000,
        "cpu_ms": 1000 * (cpu[1] - cpu[0]) / max(1, len(run.latencies)),
        "statements": sorted(run.statements),
        "used": run.next_id - options["first"],
        "exhausted": run.exhausted_at is not None,
    }


def main() -> None:
    options = json.loads(sys.argv[1])
    print(json.dumps(asyncio.run(measure(options))), flush=True)


if __name__ == "__main__":
    main()
