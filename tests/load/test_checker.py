"""The checker itself: a consistent database and history pass, and each kind of breach is
caught. Without this, a checker that finds nothing would prove nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from tests.load.checker import (
    Adjustment,
    Allocation,
    Backorder,
    Balance,
    Line,
    Order,
    PackedLine,
    PackedPart,
    Snapshot,
    check,
)
from tests.load.workload import Op, Outcome


def consistent() -> tuple[Snapshot, list[Op]]:
    """10 received; an order of 6 allocated 4 and backordered 2; 1 of another packed."""
    snapshot = Snapshot(
        balances={1: Balance(1, 1, 1, 1, on_hand=9, allocated=4, version=4)},
        adjustments={1: Adjustment(1, 1, 10, "op-1")},
        orders={
            1: Order(1, "SO-1", "op-2", "PARTIALLY_ALLOCATED", 2),
            2: Order(2, "SO-2", "op-4", "PACKED", 3),
        },
        lines={1: Line(1, 1, 1, 1, False, 6, 0), 2: Line(2, 2, 1, 1, False, 1, 0)},
        allocations={1: Allocation(1, 1, 1, 1, 4, 0), 2: Allocation(2, 2, 2, 1, 1, 1)},
        backorders={1: Backorder(1, 1, 1, 2, 0, "OPEN", None)},
        packed={1: PackedLine(1, 2, 2, 1)},
        parts=[PackedPart(1, 2, 1)],
    )
    history = [
        op(1, "adjustInventory", None, quantity=10, result={"adjustment_id": 1, "balance_id": 1}),
        op(2, "createSalesOrder", 1, result={"lines": {1: 6}}),
        op(3, "allocateOrder", 1, result={"allocations": {1: (1, 1, 4)}}),
        op(4, "createSalesOrder", 2, result={"lines": {2: 1}}),
        op(5, "allocateOrder", 2, result={"allocations": {2: (2, 1, 1)}}),
        op(6, "packAllocatedOrder", 2, result={"packed": {1: 1}}),
    ]
    return snapshot, history


def op(
    seq: int,
    name: str,
    order_id: int | None,
    outcome: Outcome = Outcome.OK,
    result: dict[str, object] | None = None,
    **args: object,
) -> Op:
    return Op(
        seq, 1, name, f"op-{seq}", order_id, dict(args), start=seq, end=seq + 0.5,
        outcome=outcome, result=result or {},
    )  # fmt: skip


def test_a_consistent_database_and_history_pass() -> None:
    snapshot, history = consistent()

    verdict = check(snapshot, history)

    assert verdict.violations == []
    assert verdict.counts["orders checked right after their last allocation"] == 1
    assert verdict.counts["order versions checked"] == 2


Breach = Callable[[Snapshot, list[Op]], None]


def over_allocated(s: Snapshot, h: list[Op]) -> None:
    s.balances[1] = dataclasses.replace(s.balances[1], allocated=12)


def allocated_not_what_is_reserved(s: Snapshot, h: list[Op]) -> None:
    s.allocations[1] = dataclasses.replace(s.allocations[1], quantity=3)


def stock_from_nowhere(s: Snapshot, h: list[Op]) -> None:
    s.balances[1] = dataclasses.replace(s.balances[1], on_hand=11)


def two_open_backorders(s: Snapshot, h: list[Op]) -> None:
    s.backorders[2] = Backorder(2, 1, 1, 1, 0, "OPEN", None)


def line_promised_twice(s: Snapshot, h: list[Op]) -> None:
    s.lines[1] = dataclasses.replace(s.lines[1], quantity_cancelled=1)


def half_packed(s: Snapshot, h: list[Op]) -> None:
    s.allocations[1] = dataclasses.replace(s.allocations[1], quantity_packed=2)


def successful_allocation_lost(s: Snapshot, h: list[Op]) -> None:
    h[2].result["allocations"][9] = (1, 1, 1)


def allocation_no_one_made(s: Snapshot, h: list[Op]) -> None:
    """One more unit reserved for order 1, its backorder one less: consistent in itself."""
    s.allocations[3] = Allocation(3, 1, 1, 1, 1, 0)
    s.balances[1] = dataclasses.replace(s.balances[1], allocated=5)
    s.backorders[1] = dataclasses.replace(s.backorders[1], quantity=1)


def refused_removal_took_a_line(s: Snapshot, h: list[Op]) -> None:
    h.append(op(7, "removeAllocationLines", 1, Outcome.REJECTED, ids=[8]))
    h[2].result["allocations"][8] = (1, 1, 1)


def refused_adjustment_written(s: Snapshot, h: list[Op]) -> None:
    h[0].outcome = Outcome.REJECTED


def version_bumped_by_a_refused_call(s: Snapshot, h: list[Op]) -> None:
    s.orders[1] = dataclasses.replace(s.orders[1], version=3)
    h.append(op(7, "packAllocatedOrder", 1, Outcome.REJECTED))


def short_line_right_after_allocation(s: Snapshot, h: list[Op]) -> None:
    s.backorders[1] = dataclasses.replace(s.backorders[1], quantity=1)


def wrong_status(s: Snapshot, h: list[Op]) -> None:
    s.orders[1] = dataclasses.replace(s.orders[1], status="ALLOCATED")


def successful_update_lost(s: Snapshot, h: list[Op]) -> None:
    h.append(op(7, "updateSalesOrderLine", 1, line_id=1, quantity=8))


@pytest.mark.parametrize(
    "breach",
    [
        over_allocated,
        allocated_not_what_is_reserved,
        stock_from_nowhere,
        two_open_backorders,
        line_promised_twice,
        half_packed,
        successful_allocation_lost,
        allocation_no_one_made,
        refused_removal_took_a_line,
        refused_adjustment_written,
        version_bumped_by_a_refused_call,
        short_line_right_after_allocation,
        wrong_status,
        successful_update_lost,
    ],
)
def test_each_breach_is_caught(breach: Breach) -> None:
    snapshot, history = consistent()
    breach(snapshot, history)

    assert check(snapshot, history).violations != []


def test_a_call_of_unknown_outcome_may_have_been_applied() -> None:
    snapshot, history = consistent()
    allocation_no_one_made(snapshot, history)
    history.append(op(7, "allocateOrder", 1, Outcome.UNKNOWN))

    verdict = check(snapshot, history)

    assert verdict.violations == []
    assert verdict.counts["allocation lines of unknown outcomes"] == 1
