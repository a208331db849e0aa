"""Forcing an interleaving of two use cases, and reading the end state to judge it.

`before_writes` wraps a unit-of-work factory so that each unit of work stops just before
its first write, after it has loaded the order and planned; `race` uses it to make two
clients load before either writes, then lets one write and finish before the other
writes. Only the unit-of-work and repository interfaces of services.ports are relied on
(the write methods by name), never db/ internals, so these helpers survive a rewrite of
db/: if a write is renamed, the race reports that it never paused instead of hanging.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, cast

from sqlalchemy.ext.asyncio import AsyncEngine

from services import retry
from services.domain.errors import DomainError
from services.ports import (
    CatalogRepository,
    OrderRepository,
    StockRepository,
    UnitOfWork,
    UnitOfWorkFactory,
)
from tests.load import checker

# The repository methods that change rows (services.ports); reads pass straight through.
WRITES = frozenset({"save", "reserve", "release", "ship", "adjust"})

Hook = Callable[[], Awaitable[None]]


class _Repository:
    """Passes every call through; a write first awaits its unit of work's hook."""

    def __init__(self, inner: object, unit: HookedUnitOfWork) -> None:
        self._inner = inner
        self._unit = unit

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name not in WRITES:
            return attribute

        async def write(*args: Any, **kwargs: Any) -> Any:
            await self._unit.before_first_write()
            return await attribute(*args, **kwargs)

        return write


class HookedUnitOfWork:
    """A real unit of work that awaits `hook` once, just before its first write."""

    def __init__(self, inner: UnitOfWork, hook: Hook) -> None:
        self._inner = inner
        self._hook = hook
        self._hooked = False

    async def before_first_write(self) -> None:
        if not self._hooked:
            self._hooked = True
            await self._hook()

    @property
    def catalog(self) -> CatalogRepository:
        return self._inner.catalog

    @property
    def stock(self) -> StockRepository:
        return cast(StockRepository, _Repository(self._inner.stock, self))

    @property
    def orders(self) -> OrderRepository:
        return cast(OrderRepository, _Repository(self._inner.orders, self))

    async def __aenter__(self) -> Self:
        await self._inner.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._inner.__aexit__(exc_type, exc, tb)

    async def commit(self) -> None:
        await self._inner.commit()


def before_writes(uow: UnitOfWorkFactory, hook: Hook) -> UnitOfWorkFactory:
    """Every unit of work made by the result awaits `hook` just before its first write
    (every attempt of a retried use case, since each attempt is a unit of work)."""
    return lambda: HookedUnitOfWork(uow(), hook)


# -- outcomes --------------------------------------------------------------------------------

Call = Callable[[UnitOfWorkFactory], Awaitable[object]]


def outcome(error: DomainError | None) -> str:
    """What a client was told: "done", or the error code and the position it names."""
    if error is None:
        return "done"
    return error.code.value if error.index is None else f"{error.code.value} at {error.index}"


@dataclass(frozen=True)
class RaceResult:
    outcomes: dict[str, str]  # client -> outcome()
    retries: int  # internal retries (services.retry) during the race


async def race(uow: UnitOfWorkFactory, calls: Mapping[str, Call], first: str) -> RaceResult:
    """Run the calls at once, each on its own connections, in this interleaving: every
    client loads what it needs and stops before its first write; when all have, `first`
    writes and finishes (commit, or refusal), and only then do the others write. So the
    others always decide on a stale read and must find out at write time.

    Fails unless every client stopped before a write: otherwise the race was not forced.
    """
    assert first in calls
    loaded = asyncio.Barrier(len(calls))
    first_done = asyncio.Event()
    paused: set[str] = set()
    arrived: set[str] = set()

    async def client(name: str, call: Call) -> str:
        async def pause() -> None:
            if name in arrived:  # a retry, after the race: no second pause
                return
            paused.add(name)
            arrived.add(name)
            await loaded.wait()
            if name != first:
                await first_done.wait()

        try:
            await call(before_writes(uow, pause))
            return outcome(None)
        except DomainError as error:
            return outcome(error)
        finally:
            if name not in arrived:  # finished without writing: do not leave the rest waiting
                arrived.add(name)
                await loaded.wait()
            if name == first:
                first_done.set()

    retries_before = retry.retry_count
    told = await asyncio.gather(*(client(name, call) for name, call in calls.items()))
    assert paused == set(calls), f"only {sorted(paused)} reached a write: the race was not forced"
    return RaceResult(dict(zip(calls, told, strict=True)), retry.retry_count - retries_before)


# -- the end state ---------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    """What the orders and the stock say, with the ids the set-up made as keys, and rows
    made later (whose ids depend on who won) as sorted tuples of what they refer to."""

    balances: dict[int, tuple[int, int]]  # balance -> (on hand, allocated)
    versions: dict[int, int]  # order -> version
    lines: dict[int, tuple[int, int]]  # line -> (quantity, quantity cancelled)
    allocations: list[tuple[int, int, int, int]]  # (line, balance, quantity, quantity packed)
    backorders: list[tuple[int, int, int, str]]  # (line, quantity, quantity allocated, status)
    packed: list[tuple[int, int]]  # packed lines: (line, quantity)


async def world(engine: AsyncEngine) -> World:
    """The end state, after checking that stock equals what the orders say: for every
    balance 0 <= allocated <= on hand and allocated = the unpacked quantities of its
    allocation lines (tests/load/checker.py, which checks the rest of SPEC 4 as well)."""
    s = await checker.read_snapshot(engine)
    found = checker.check(s)
    assert found.violations == [], found.violations
    assert found.counts["balances"] > 0, "no balance was checked"
    return World(
        balances={b.id: (b.on_hand, b.allocated) for b in s.balances.values()},
        versions={o.id: o.version for o in s.orders.values()},
        lines={ln.id: (ln.quantity, ln.quantity_cancelled) for ln in s.lines.values()},
        allocations=sorted(
            (a.line_id, a.balance_id, a.quantity, a.quantity_packed) for a in s.allocations.values()
        ),
        backorders=sorted(
            (b.line_id, b.quantity, b.quantity_allocated, b.status) for b in s.backorders.values()
        ),
        packed=sorted((p.line_id, p.quantity) for p in s.packed.values()),
    )


@dataclass(frozen=True)
class Serial:
    """One serial outcome (the end state, and what each client was told), and how many
    internal retries the race needs to reach it: the loser's, to find out it lost."""

    world: World
    outcomes: dict[str, str]
    retries: int


def assert_serial(
    world: World, result: RaceResult, serial: Mapping[str, Serial], first: str
) -> None:
    """The race ended as one of the serial runs (A then B, or B then A) and, since `first`
    wrote first, as the run in which it went first, its loser retrying as expected."""
    observed = (world, result.outcomes)
    runs = {name: (run.world, run.outcomes) for name, run in serial.items()}
    assert observed in runs.values(), f"not the end of any serial run: {observed}\n{runs}"
    assert observed == runs[first], f"{first} wrote first, yet the race ended as {observed}"
    assert result.retries == serial[first].retries
