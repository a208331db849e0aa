"""How big and how long: the full run (`make bench`) and the CI smoke (`make bench-smoke`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LUA = Path(__file__).resolve().parent / "load.lua"
DOCS = ROOT / "docs" / "benchmarks.md"


@dataclass(frozen=True)
class Sizes:
    name: str
    seconds: float  # one measurement against the server
    warmup: float  # before each one, on orders of its own
    floor_seconds: float  # one plain-asyncpg measurement (after a warm-up of warmup)
    read_seconds: float
    pgbench_scale: int  # pgbench -i -s: 16 branches, so 16 clients rarely wait on one
    pgbench_seconds: int  # 0: no pgbench
    items: int  # the small database: this many items, one balance each (10^3)
    large_items: int  # the large one: items x large_balances_per_item balances (10^6)
    large_balances_per_item: int
    large_orders: int  # orders already in the large database (10^5)
    read_orders: int  # orders of read_lines lines for the reads; salesOrders(first: this)
    read_lines: int
    clients: int = 16
    hot_clients: int = 32
    # Reads are timed one at a time: a page of 50 orders of 20 lines takes long enough
    # that with more clients p50 and p99 would be mostly queueing.
    read_clients: int = 1
    min_orders: int = 2_000  # orders made for one server measurement at least
    # Orders made for the floor of 2 and of 20 lines: more than it can allocate in its
    # warm-up and measurement (a floor that runs out measures nothing).
    floor_orders: tuple[int, int] = (40_000, 8_000)


FULL = Sizes(
    name="full",
    seconds=15,
    warmup=3,
    floor_seconds=10,
    read_seconds=20,
    pgbench_scale=16,
    pgbench_seconds=15,
    items=1_000,
    large_items=100_000,
    large_balances_per_item=10,
    large_orders=100_000,
    read_orders=50,
    read_lines=20,
)

# Few clients, so that even a slow machine answers within the short runs.
SMOKE = Sizes(
    name="smoke",
    seconds=2,
    warmup=1,
    floor_seconds=1,
    read_seconds=2,
    pgbench_scale=1,
    pgbench_seconds=1,
    items=1_000,
    large_items=1_000,
    large_balances_per_item=10,
    large_orders=1_000,
    read_orders=5,
    read_lines=20,
    clients=4,
    hot_clients=8,
    min_orders=300,
    floor_orders=(3_000, 3_000),
)
