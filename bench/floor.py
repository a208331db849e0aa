"""The floor: allocateOrder's transaction in plain asyncpg, no GraphQL, no SQLAlchemy.

The same statements (imported from db/), in the same order, that
services.orders.allocate_order issues for an order whose lines all have stock: load the
order with its lines, allocation lines and backorders (one statement), read the
candidate balances, plan (FEFO, greedy), claim the order (version + 1), insert the
allocation lines (one statement), reserve with the guarded statement that also writes
their movements; BEGIN and COMMIT around them. Each client holds one connection of its
own for the whole run, so nothing is spent on a pool, and reads nothing back.

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

from db import reads
from db import repositories as sql
from services.domain.order import allocation_name

# The service's own statements (db/reads.py, db/repositories.py), so the two cannot drift.
ORDER_TREES = reads.ORDER_TREES
CANDIDATES, CLAIM, INSERT_ALLOCATIONS, RESERVE = (
    sql.CANDIDATES,
    sql.CLAIM,
    sql.INSERT_ALLOCATIONS,
    sql.RESERVE,
)

_NO_EXPIRY = datetime.max.replace(tzinfo=UTC)
ACTOR = "anonymous"  # as the bench's server in open mode records it


class ConflictError(Exception):
    """The order or a balance changed under us (never in the bench's runs)."""


async def allocate(conn: Any, order_id: int) -> int:
    """Allocate one order in one transaction; the number of statements it ran (BEGIN and
    COMMIT included, as the service's are counted)."""
    async with conn.transaction():
        order = await conn.fetchrow(ORDER_TREES, [order_id])
        allocated: dict[int, int] = defaultdict(int)
        for allocation in order["allocations"] or ():
            allocated[allocation[2]] += allocation[4]  # line_id, quantity
        demand = [
            (line_id, item_id, open_demand)
            for line_id, _, _, item_id, serialized, quantity, cancelled in order["lines"] or ()
            if not serialized and (open_demand := quantity - allocated[line_id] - cancelled) > 0
        ]
        if not demand:
            return 3
        candidates = await conn.fetch(CANDIDATES, list({item for _, item, _ in demand}))
        # FEFO, then FIFO, then pick sequence, then id: the planner's default order.
        candidates.sort(key=lambda c: (c[6] is None, c[6] or _NO_EXPIRY, c[5], c[7], c[0]))
        available = {c[0]: c[4] for c in candidates}
        by_item: dict[int, list[Any]] = defaultdict(list)
        for candidate in candidates:
            by_item[candidate[1]].append(candidate)
        picks: list[tuple[int, int, int]] = []  # line, balance, quantity
        for line_id, item_id, open_demand in demand:
            wanted = open_demand
            for candidate in by_item[item_id]:
                if wanted == 0:
                    break
                take = min(wanted, available[candidate[0]])
                if take > 0:
                    available[candidate[0]] -= take
                    picks.append((line_id, candidate[0], take))
                    wanted -= take
            if wanted:
                raise ConflictError(
                    f"line {line_id} is short of {wanted}: the bench gives ample stock"
                )
        # The order is claimed before stock is reserved, as the service does.
        claimed = await conn.fetchrow(
            CLAIM, order_id, order["version"], "ALLOCATED", ACTOR, order["priority"]
        )
        if claimed is None:
            raise ConflictError("the order changed under us")
        lines_, balances, quantities = (list(column) for column in zip(*picks, strict=True))
        made = await conn.fetch(INSERT_ALLOCATIONS, order_id, ACTOR, lines_, balances, quantities)
        ids = [row["id"] for row in made]
        # The balances and one movement per allocation line, as the ledger wants.
        reserved = await conn.fetch(
            RESERVE, balances, quantities, lines_, ids, [allocation_name(i) for i in ids],
            [order_id] * len(ids), ACTOR, None, None,
        )  # fmt: skip
        if len(reserved) != len(set(balances)):
            raise ConflictError("a balance changed under us")
        return 7


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
