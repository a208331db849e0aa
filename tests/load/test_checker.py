"""The checker itself: a consistent database and history pass, and every clause catches a
breach of it alone, with the violation it names. Without this, a checker that finds
nothing would prove nothing.

Each breach below starts from one consistent world and breaks exactly one rule, mending
whatever else the change would upset, so that switching that clause off in checker.py
makes its test fail (the README says how that was checked).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import GraphQLClient
from tests.load.checker import (
    Adjustment,
    Allocation,
    Backorder,
    Balance,
    Clause,
    Item,
    Line,
    Order,
    PackedLine,
    PackedPart,
    Snapshot,
    Violation,
    as_seen_at,
    check,
    compare,
    read_snapshot,
)
from tests.load.workload import Op, Outcome


def consistent() -> tuple[Snapshot, list[Op]]:
    """10 WIDGET received. Order 1: 6 WIDGET and 1 of a serialized item; allocated 4,
    backordered 2, the serialized line skipped. Order 2: 1 WIDGET allocated and packed,
    then a line of 2 added, and a serialized line added and deleted again."""
    snapshot = Snapshot(
        items={1: Item(1, "WIDGET", False), 2: Item(2, "SERIAL", True)},
        balances={1: Balance(1, 1, 1, 1, on_hand=9, allocated=4, version=5)},
        adjustments={1: Adjustment(1, 1, 10, "op-1")},
        orders={
            1: Order(1, "SO-1", "op-2", "PARTIALLY_ALLOCATED", 2),
            2: Order(2, "SO-2", "op-4", "PARTIALLY_PACKED", 6),
        },
        lines={
            1: Line(1, 1, 1, 1, False, 6, 0),
            2: Line(2, 1, 2, 2, True, 1, 0),
            3: Line(3, 2, 1, 1, False, 1, 0),
            4: Line(4, 2, 2, 1, False, 2, 0),
        },
        allocations={1: Allocation(1, 1, 1, 1, 4, 0), 2: Allocation(2, 2, 3, 1, 1, 1)},
        backorders={1: Backorder(1, 1, 1, 2, 0, "OPEN", None)},
        packed={1: PackedLine(1, 2, 3, 1)},
        parts=[PackedPart(1, 2, 1)],
    )
    history = [
        op(1, "adjustInventory", None, sku="WIDGET", quantity=10,
           result={"adjustment_id": 1, "balance_id": 1}),
        op(2, "createSalesOrder", 1, result={"lines": {1: 6, 2: 1}}),
        op(3, "allocateOrder", 1, result={"allocations": {1: (1, 1, 4)}, "skipped": [2]}),
        op(4, "createSalesOrder", 2, result={"lines": {3: 1}}),
        op(5, "allocateOrder", 2, result={"allocations": {2: (3, 1, 1)}, "skipped": []}),
        op(6, "packAllocatedOrder", 2, result={"packed": {1: 1}}),
        op(7, "addSalesOrderLine", 2, sku="WIDGET", quantity=2),
        op(8, "addSalesOrderLine", 2, sku="SERIAL", quantity=1),
        op(9, "deleteSalesOrderLine", 2, line_id=5),
    ]  # fmt: skip
    return snapshot, history


def op(
    seq: int,
    name: str,
    order_id: int | None,
    outcome: Outcome = Outcome.OK,
    *,
    result: dict[str, Any] | None = None,
    code: str | None = None,
    **args: Any,
) -> Op:
    return Op(
        seq, 1, name, f"op-{seq}", order_id, dict(args), start=seq, end=seq + 0.5,
        outcome=outcome, code=code, result=result or {},
    )  # fmt: skip


def replace(rows: dict[int, Any], key: int, **changes: Any) -> None:
    rows[key] = dataclasses.replace(rows[key], **changes)


def test_a_consistent_database_and_history_pass() -> None:
    snapshot, history = consistent()

    verdict = check(snapshot, history)

    assert verdict.violations == []
    assert verdict.counts["orders checked right after their last allocation"] == 1
    assert verdict.counts["order versions checked"] == 2
    assert verdict.counts["balance versions checked exactly"] == 1
    assert verdict.counts["serialized lines reported skipped"] == 1
    assert verdict.counts["orders whose lines were checked"] == 2


def test_a_ledger_that_adds_up_passes() -> None:
    snapshot, history = consistent()
    snapshot.ledger = {1: (9, 4)}

    verdict = check(snapshot, history)

    assert verdict.violations == []
    assert verdict.counts["balances checked against their movements"] == 1


# -- one breach per clause ---------------------------------------------------------------------

Breach = Callable[[Snapshot, list[Op]], None]


@dataclasses.dataclass(frozen=True)
class Case:
    breach: Breach
    expected: Violation
    with_history: bool  # the rules of every commit are judged on the rows alone


CASES: list[Case] = []


def breaks(
    clause: Clause, subject: str, detail: str, *, with_history: bool = True
) -> Callable[[Breach], Breach]:
    def register(breach: Breach) -> Breach:
        CASES.append(Case(breach, Violation(clause, subject, detail), with_history))
        return breach

    return register


def state(clause: Clause, subject: str, detail: str) -> Callable[[Breach], Breach]:
    return breaks(clause, subject, detail, with_history=False)


# What holds at every commit, judged on the rows alone.


@state(Clause.BALANCE_OUT_OF_RANGE, "balance 1", "allocated 4, on hand 2")
def written_off_below_what_is_allocated(s: Snapshot, h: list[Op]) -> None:
    s.adjustments[2] = Adjustment(2, 1, -7, "op-10")
    replace(s.balances, 1, on_hand=2)


@state(
    Clause.BALANCE_ALLOCATED_UNRESERVED,
    "balance 1",
    "allocated 5, unpacked on its allocation lines 4",
)
def a_unit_reserved_for_no_allocation_line(s: Snapshot, h: list[Op]) -> None:
    replace(s.balances, 1, allocated=5)


@state(Clause.BALANCE_ON_HAND_UNEXPLAINED, "balance 1", "on hand 11, adjustments 10 less packed 1")
def stock_from_nowhere(s: Snapshot, h: list[Op]) -> None:
    replace(s.balances, 1, on_hand=11)


@state(
    Clause.ALLOCATION_OFF_ITS_ORDER,
    "allocation line 3",
    "on line 1, which is not a line of its order 2",
)
def an_allocation_line_on_another_orders_line(s: Snapshot, h: list[Op]) -> None:
    s.allocations[3] = Allocation(3, 2, 1, 1, 1, 0)
    replace(s.balances, 1, allocated=5)
    replace(s.backorders, 1, quantity=1)


@state(Clause.ALLOCATION_WRONG_ITEM, "allocation line 3", "draws on balance 2, not one of item 1")
def an_allocation_line_on_another_items_stock(s: Snapshot, h: list[Op]) -> None:
    s.items[3] = Item(3, "BOLT", False)
    s.balances[2] = Balance(2, 3, 2, 1, on_hand=5, allocated=1, version=3)
    s.adjustments[2] = Adjustment(2, 2, 5, "op-10")
    s.allocations[3] = Allocation(3, 1, 1, 2, 1, 0)
    replace(s.backorders, 1, quantity=1)


@state(Clause.ALLOCATION_SERIALIZED, "allocation line 3", "on line 2 of a serialized item")
def a_serialized_line_allocated(s: Snapshot, h: list[Op]) -> None:
    s.balances[2] = Balance(2, 2, 2, 1, on_hand=5, allocated=1, version=3)
    s.adjustments[2] = Adjustment(2, 2, 5, "op-10")
    s.allocations[3] = Allocation(3, 1, 2, 2, 1, 0)


@state(Clause.ALLOCATION_PACKED_IN_PART, "allocation line 1", "2 of 4 packed")
def half_an_allocation_line_packed(s: Snapshot, h: list[Op]) -> None:
    replace(s.allocations, 1, quantity_packed=2)
    s.packed[2] = PackedLine(2, 1, 1, 2)
    s.parts.append(PackedPart(2, 1, 2))
    replace(s.balances, 1, on_hand=7, allocated=2)
    replace(s.orders, 1, status="PARTIALLY_PACKED")


@state(
    Clause.ALLOCATION_PACKED_UNRECORDED,
    "allocation line 1",
    "quantity packed 4, packed lines took 0",
)
def packed_without_a_packed_line(s: Snapshot, h: list[Op]) -> None:
    replace(s.allocations, 1, quantity_packed=4)
    replace(s.balances, 1, allocated=0)
    replace(s.orders, 1, status="PARTIALLY_PACKED")


@state(Clause.PACKED_LINE_QUANTITY, "packed line 1", "quantity 2, taken from allocation lines 1")
def a_packed_line_larger_than_what_it_packed(s: Snapshot, h: list[Op]) -> None:
    replace(s.packed, 1, quantity=2)


@state(
    Clause.PACKED_LINE_OTHER_LINE,
    "packed line 1",
    "packs allocation lines [2], which are not of its line 4",
)
def a_packed_line_packing_another_lines_allocation(s: Snapshot, h: list[Op]) -> None:
    replace(s.packed, 1, line_id=4)


@state(
    Clause.BACKORDER_OFF_ITS_ORDER, "backorder 1", "on line 1, which is not a line of its order 2"
)
def a_backorder_on_another_orders_line(s: Snapshot, h: list[Op]) -> None:
    replace(s.backorders, 1, order_id=2)


@state(Clause.BACKORDER_SERIALIZED, "backorder 2", "on line 2 of a serialized item")
def a_serialized_line_backordered(s: Snapshot, h: list[Op]) -> None:
    s.backorders[2] = Backorder(2, 1, 2, 1, 0, "OPEN", None)


@state(Clause.BACKORDER_OVER_ALLOCATED, "backorder 1", "3 of 2 allocated")
def a_backorder_filled_beyond_its_quantity(s: Snapshot, h: list[Op]) -> None:
    replace(s.backorders, 1, quantity_allocated=3)


@state(Clause.BACKORDER_ALLOCATED_SHORT, "backorder 2", "ALLOCATED with 2 of 3 remaining")
def an_allocated_backorder_with_quantity_remaining(s: Snapshot, h: list[Op]) -> None:
    s.backorders[2] = Backorder(2, 1, 1, 3, 1, "ALLOCATED", None)


@state(Clause.LINE_TWO_OPEN_BACKORDERS, "line 1", "OPEN backorders [1, 2]")
def two_open_backorders(s: Snapshot, h: list[Op]) -> None:
    replace(s.backorders, 1, quantity=1)
    s.backorders[2] = Backorder(2, 1, 1, 1, 0, "OPEN", None)


@state(
    Clause.LINE_OVERCOMMITTED,
    "line 1",
    "quantity 6 < allocated 4 + backordered 2 + cancelled 1",
)
def a_line_promised_twice(s: Snapshot, h: list[Op]) -> None:
    replace(s.lines, 1, quantity_cancelled=1)


@state(Clause.ORDER_STATUS, "order 1", "status ALLOCATED, its quantities give PARTIALLY_ALLOCATED")
def a_wrong_status(s: Snapshot, h: list[Op]) -> None:
    replace(s.orders, 1, status="ALLOCATED")


# What the clients were told, judged on the rows and the whole history.


@breaks(Clause.ORDER_LOST, "#10 createSalesOrder({}) -> OK", "order 3 is None")
def a_created_order_lost(s: Snapshot, h: list[Op]) -> None:
    h.append(op(10, "createSalesOrder", 3, result={"lines": {}}))


@breaks(
    Clause.ORDER_NO_CREATOR,
    "order 1",
    "customer op-2, made by #2 createSalesOrder({}) -> REJECTED INVALID_INPUT",
)
def a_refused_creation_made_its_order(s: Snapshot, h: list[Op]) -> None:
    h[1] = op(2, "createSalesOrder", None, Outcome.REJECTED, code="INVALID_INPUT")


@breaks(
    Clause.LINE_LOST,
    "line 2",
    "gone, and no deletion of it may have succeeded; calls naming it: none",
)
def a_created_line_lost(s: Snapshot, h: list[Op]) -> None:
    del s.lines[2]


@breaks(
    Clause.LINE_LOST,
    "line 2",
    "gone, and no deletion of it may have succeeded; calls naming it: "
    "#10 deleteSalesOrderLine({'line_id': 2}) -> REJECTED VERSION_CONFLICT",
)
def a_refused_deletion_took_its_line(s: Snapshot, h: list[Op]) -> None:
    h.append(
        op(10, "deleteSalesOrderLine", 1, Outcome.REJECTED, code="VERSION_CONFLICT", line_id=2)
    )
    del s.lines[2]


@breaks(
    Clause.LINE_NO_MAKER,
    "order 1",
    "added lines [6, 7] of item 1, by 1 calls that may have succeeded",
)
def two_lines_added_by_one_call(s: Snapshot, h: list[Op]) -> None:
    h.append(op(10, "addSalesOrderLine", 1, Outcome.UNKNOWN, sku="WIDGET", quantity=1))
    s.lines[6] = Line(6, 1, 3, 1, False, 1, 0)
    s.lines[7] = Line(7, 1, 4, 1, False, 1, 0)


@breaks(Clause.ADDED_LINE_LOST, "order 2", "2 lines added, 0 there and 1 deleted")
def an_added_line_lost(s: Snapshot, h: list[Op]) -> None:
    del s.lines[4]
    replace(s.orders, 2, status="PACKED")


@breaks(
    Clause.LINE_DELETE_LOST,
    "#9 deleteSalesOrderLine({'line_id': 5}) -> OK",
    "the line is still there",
)
def a_deleted_line_still_there(s: Snapshot, h: list[Op]) -> None:
    s.lines[5] = Line(5, 2, 3, 2, True, 1, 0)


@breaks(Clause.LINE_QUANTITY_NEVER_ASKED, "line 4", "quantity 3, asked for: [2] then []")
def an_added_line_of_another_quantity(s: Snapshot, h: list[Op]) -> None:
    replace(s.lines, 4, quantity=3)


@breaks(
    Clause.LINE_UPDATE_LOST,
    "line 1",
    "6 after #10 updateSalesOrderLine({'line_id': 1, 'quantity': 8}) -> OK",
)
def a_successful_update_lost(s: Snapshot, h: list[Op]) -> None:
    h.append(op(10, "updateSalesOrderLine", 1, line_id=1, quantity=8))
    replace(s.orders, 1, version=3)


@breaks(
    Clause.ALLOCATION_LOST,
    "#3 allocateOrder({}) -> OK",
    "allocation line 1 is gone, and no removal of it",
)
def a_successful_allocation_lost(s: Snapshot, h: list[Op]) -> None:
    del s.allocations[1]
    replace(s.balances, 1, allocated=0)
    replace(s.backorders, 1, quantity=6)
    replace(s.orders, 1, status="OPEN")


@breaks(
    Clause.ALLOCATION_ALTERED,
    "#3 allocateOrder({}) -> OK",
    "allocation line 1 is Allocation(id=1, order_id=1, line_id=1, balance_id=1, quantity=3, "
    "quantity_packed=0)",
)
def an_allocation_line_not_as_answered(s: Snapshot, h: list[Op]) -> None:
    replace(s.allocations, 1, quantity=3)
    replace(s.balances, 1, allocated=3)
    replace(s.backorders, 1, quantity=3)


@breaks(
    Clause.ALLOCATION_NO_MAKER,
    "allocation line 3",
    "no allocateOrder of order 1 or fill of its item that may have made it",
)
def an_allocation_line_no_one_made(s: Snapshot, h: list[Op]) -> None:
    """One more unit reserved for order 1, its backorder one less: consistent in itself."""
    s.allocations[3] = Allocation(3, 1, 1, 1, 1, 0)
    replace(s.balances, 1, allocated=5)
    replace(s.backorders, 1, quantity=1)


@breaks(
    Clause.ALLOCATION_UNREPORTED,
    "allocation line 3",
    "named by #10 removeAllocationLines({'ids': [3]}) -> OK, in no answer of an "
    "allocateOrder of order 1",
)
def a_removed_allocation_line_no_answer_reported(s: Snapshot, h: list[Op]) -> None:
    """The line was made by an allocateOrder whose answer left it out (another client
    removed it before the answer was read), so no client can account for it."""
    h.append(op(10, "removeAllocationLines", 1, ids=[3], result={"removed": [3]}))
    replace(s.orders, 1, version=3)
    replace(s.balances, 1, version=7)


@breaks(
    Clause.SERIALIZED_NOT_REPORTED,
    "#3 allocateOrder({}) -> OK",
    "serialized line 2 not reported as SERIALIZED_ITEM",
)
def a_serialized_line_skipped_in_silence(s: Snapshot, h: list[Op]) -> None:
    h[2].result["skipped"] = []


@breaks(
    Clause.SKIPPED_NOT_SERIALIZED,
    "#3 allocateOrder({}) -> OK",
    "reported line 1 as SERIALIZED_ITEM; it is Line(id=1, order_id=1, line_number=1, "
    "item_id=1, serialized=False, quantity=6, quantity_cancelled=0)",
)
def a_plain_line_reported_serialized(s: Snapshot, h: list[Op]) -> None:
    h[2].result["skipped"] = [1, 2]


def remove_allocation_line_1(s: Snapshot, h: list[Op], answered: list[int]) -> None:
    """A removal of allocation line 1 that a client saw succeed, answering `answered`."""
    h.append(op(10, "removeAllocationLines", 1, ids=[1], result={"removed": answered}))
    replace(s.orders, 1, version=3, status="OPEN")
    replace(s.balances, 1, allocated=0, version=6)
    del s.allocations[1]


@breaks(
    Clause.REMOVAL_LOST,
    "#10 removeAllocationLines({'ids': [1]}) -> OK",
    "allocation lines [1] are still there",
)
def a_successful_removal_left_its_line(s: Snapshot, h: list[Op]) -> None:
    h.append(op(10, "removeAllocationLines", 1, ids=[1], result={"removed": [1]}))
    replace(s.orders, 1, version=3)
    replace(s.balances, 1, version=6)


@breaks(
    Clause.REMOVAL_MISREPORTED,
    "#10 removeAllocationLines({'ids': [1]}) -> OK",
    "removedIds []",
)
def a_removal_answering_other_ids(s: Snapshot, h: list[Op]) -> None:
    remove_allocation_line_1(s, h, answered=[])


@breaks(
    Clause.REFUSED_REMOVAL_TOOK_LINES,
    "#11 removeAllocationLines({'ids': [3]}) -> REJECTED VERSION_CONFLICT",
    "allocation lines [3] are gone",
)
def a_refused_removal_took_its_line(s: Snapshot, h: list[Op]) -> None:
    """Allocation line 3, made by a call whose answer was lost, is gone; the only call
    that named it was refused."""
    h.append(op(10, "allocateOrder", 1, Outcome.UNKNOWN, code="transport:ReadError"))
    h.append(op(11, "removeAllocationLines", 1, Outcome.REJECTED, code="VERSION_CONFLICT", ids=[3]))


@breaks(Clause.PACK_LOST, "#10 packAllocatedOrder({}) -> OK", "packed line 2 is None")
def a_successful_pack_lost(s: Snapshot, h: list[Op]) -> None:
    h.append(op(10, "packAllocatedOrder", 1, result={"packed": {2: 4}}))
    replace(s.orders, 1, version=3)


@breaks(
    Clause.PACKED_LINE_NO_MAKER,
    "packed line 1",
    "no packAllocatedOrder of order 2 that may have made it",
)
def a_refused_pack_packed(s: Snapshot, h: list[Op]) -> None:
    h[5] = op(6, "packAllocatedOrder", 2, Outcome.REJECTED, code="VERSION_CONFLICT")
    replace(s.orders, 2, version=5)
    replace(s.balances, 1, version=4)


@breaks(
    Clause.ADJUSTMENT_LOST,
    "#10 adjustInventory({'sku': 'WIDGET', 'quantity': 5}) -> OK",
    "adjustment 2 is None",
)
def a_successful_adjustment_lost(s: Snapshot, h: list[Op]) -> None:
    h.append(
        op(10, "adjustInventory", None, sku="WIDGET", quantity=5,
           result={"adjustment_id": 2, "balance_id": 1})
    )  # fmt: skip


@breaks(
    Clause.ADJUSTMENT_NO_MAKER,
    "adjustment 1",
    "reason op-1: #1 adjustInventory({'sku': 'WIDGET', 'quantity': 10}) -> REJECTED "
    "INSUFFICIENT_STOCK",
)
def a_refused_adjustment_written(s: Snapshot, h: list[Op]) -> None:
    h[0] = op(1, "adjustInventory", None, Outcome.REJECTED, code="INSUFFICIENT_STOCK",
              sku="WIDGET", quantity=10)  # fmt: skip


@breaks(
    Clause.ADJUSTMENT_ALTERED,
    "adjustment 1",
    "quantity 11, #1 adjustInventory({'sku': 'WIDGET', 'quantity': 10}) -> UNKNOWN "
    "transport:ReadError sent 10",
)
def an_adjustment_of_another_quantity(s: Snapshot, h: list[Op]) -> None:
    h[0] = op(1, "adjustInventory", None, Outcome.UNKNOWN, code="transport:ReadError",
              sku="WIDGET", quantity=10)  # fmt: skip
    replace(s.adjustments, 1, quantity=11)
    replace(s.balances, 1, on_hand=10)


@breaks(
    Clause.CANCEL_LOST,
    "#10 cancelBackorder({'backorder_id': 1}) -> OK",
    "the backorder is Backorder(id=1, order_id=1, line_id=1, quantity=2, quantity_allocated=0, "
    "status='OPEN', cancel_reason=None)",
)
def a_successful_cancel_lost(s: Snapshot, h: list[Op]) -> None:
    h.append(op(10, "cancelBackorder", 1, backorder_id=1))
    replace(s.orders, 1, version=3)


@breaks(
    Clause.CANCELLED_BY_NO_ONE,
    "backorder 1",
    "cancelled by #10 cancelBackorder({'backorder_id': 1}) -> REJECTED VERSION_CONFLICT",
)
def a_refused_cancel_cancelled(s: Snapshot, h: list[Op]) -> None:
    h.append(
        op(10, "cancelBackorder", 1, Outcome.REJECTED, code="VERSION_CONFLICT", backorder_id=1)
    )
    replace(s.backorders, 1, status="CANCELLED", cancel_reason="op-10")
    replace(s.lines, 1, quantity_cancelled=2)
    replace(s.orders, 1, status="ALLOCATED")


@breaks(
    Clause.BACKORDER_DELETE_LOST,
    "#10 deleteBackorder({'backorder_id': 1}) -> OK",
    "the backorder is still there",
)
def a_successful_backorder_deletion_lost(s: Snapshot, h: list[Op]) -> None:
    h.append(op(10, "deleteBackorder", 1, backorder_id=1))
    replace(s.orders, 1, version=3)


@breaks(
    Clause.ORDER_VERSION_COUNT,
    "order 1",
    "version 3 after 1 changes (and 0 that may have changed it)",
)
def a_version_raised_by_a_refused_call(s: Snapshot, h: list[Op]) -> None:
    replace(s.orders, 1, version=3)
    h.append(op(10, "packAllocatedOrder", 1, Outcome.REJECTED, code="NOTHING_TO_PACK"))


@breaks(
    Clause.BALANCE_VERSION_COUNT,
    "balance 1",
    "version 6 after 4 changes (and 0 calls that may have changed it)",
)
def a_balance_version_raised_by_no_change(s: Snapshot, h: list[Op]) -> None:
    replace(s.balances, 1, version=6)


@breaks(
    Clause.BALANCE_VERSION_COUNT,
    "balance 1",
    "version 4 after 4 changes (and 0 calls that may have changed it)",
)
def a_balance_changed_without_its_version(s: Snapshot, h: list[Op]) -> None:
    replace(s.balances, 1, version=4)


@breaks(
    Clause.LINE_UNBALANCED_AFTER_ALLOCATION,
    "line 1",
    "not fully accounted for after #3 allocateOrder({}) -> OK",
)
def a_line_short_right_after_allocation(s: Snapshot, h: list[Op]) -> None:
    replace(s.backorders, 1, quantity=1)


@state(
    Clause.LEDGER_UNBALANCED,
    "balance 1",
    "on hand 9, allocated 4; its movements give (9, 3)",
)
def a_reservation_without_its_movement(s: Snapshot, h: list[Op]) -> None:
    s.ledger = {1: (9, 3)}


@breaks(Clause.APPLIED_TWICE, "#2 createSalesOrder({}) -> OK", "2 orders")
def an_order_created_twice(s: Snapshot, h: list[Op]) -> None:
    s.orders[3] = Order(3, "SO-3", "op-2", "OPEN", 1)


@breaks(
    Clause.APPLIED_TWICE,
    "#1 adjustInventory({'sku': 'WIDGET', 'quantity': 10}) -> OK",
    "2 adjustments",
)
def a_receipt_applied_twice(s: Snapshot, h: list[Op]) -> None:
    s.adjustments[2] = Adjustment(2, 1, 10, "op-1")
    replace(s.balances, 1, on_hand=19, version=6)


@pytest.mark.parametrize("case", CASES, ids=[case.breach.__name__ for case in CASES])
def test_each_breach_is_caught_by_its_clause_alone(case: Case) -> None:
    snapshot, history = consistent()
    case.breach(snapshot, history)

    verdict = check(snapshot, history if case.with_history else ())

    assert verdict.violations == [case.expected]


STATE_CASES = [case for case in CASES if not case.with_history]


@pytest.mark.parametrize("case", STATE_CASES, ids=[case.breach.__name__ for case in STATE_CASES])
def test_each_breach_of_a_rule_of_every_commit_is_caught_with_the_history_too(
    case: Case,
) -> None:
    """A rule of every commit is judged with the history too (the load runs do both),
    and there its violation is still reported, whatever else the history adds."""
    snapshot, history = consistent()
    case.breach(snapshot, history)

    assert case.expected in check(snapshot, history).violations


# -- from one snapshot to a later one ----------------------------------------------------------

Change = Callable[[Snapshot], None]
CHANGES: list[tuple[Change, Violation]] = []


def changes(clause: Clause, subject: str, detail: str) -> Callable[[Change], Change]:
    def register(change: Change) -> Change:
        CHANGES.append((change, Violation(clause, subject, detail)))
        return change

    return register


@changes(Clause.BALANCE_GONE, "balance 1", "gone since the snapshot before")
def a_balance_vanishes(after: Snapshot) -> None:
    del after.balances[1]


@changes(Clause.BALANCE_VERSION_FELL, "balance 1", "version 5, then 4")
def a_balance_version_falls(after: Snapshot) -> None:
    replace(after.balances, 1, version=4)


@changes(
    Clause.BALANCE_CHANGED_UNVERSIONED,
    "balance 1",
    "on hand 9 -> 10, allocated 4 -> 4, version 5 -> 5",
)
def a_balance_changes_at_the_same_version(after: Snapshot) -> None:
    replace(after.balances, 1, on_hand=10)


@changes(Clause.ORDER_GONE, "order 2", "gone since the snapshot before")
def an_order_vanishes(after: Snapshot) -> None:
    del after.orders[2]


@changes(Clause.ORDER_VERSION_FELL, "order 1", "version 2, then 1")
def an_order_version_falls(after: Snapshot) -> None:
    replace(after.orders, 1, version=1)


@changes(Clause.ORDER_CHANGED_UNVERSIONED, "order 1", "changed, version 2 -> 2")
def an_order_line_changes_at_the_same_version(after: Snapshot) -> None:
    replace(after.lines, 1, quantity=7)


@changes(Clause.ORDER_CHANGED_UNVERSIONED, "order 2", "changed, version 6 -> 6")
def a_backorder_appears_at_the_same_version(after: Snapshot) -> None:
    after.backorders[2] = Backorder(2, 2, 4, 2, 0, "OPEN", None)


@pytest.mark.parametrize(
    ("change", "expected"), CHANGES, ids=[change.__name__ for change, _ in CHANGES]
)
def test_each_change_between_snapshots_is_caught_by_its_clause_alone(
    change: Change, expected: Violation
) -> None:
    before, _ = consistent()
    after, _ = consistent()
    change(after)

    assert compare(before, after).violations == [expected]
    assert expected in check(after, previous=before).violations


def test_changes_that_raise_their_versions_pass_between_snapshots() -> None:
    before, _ = consistent()
    after, _ = consistent()
    replace(after.balances, 1, on_hand=10, version=6)
    replace(after.lines, 1, quantity=7)
    replace(after.orders, 1, version=3)

    verdict = compare(before, after)

    assert verdict.violations == []
    assert verdict.counts["balances compared with the snapshot before"] == 1
    assert verdict.counts["orders compared with the snapshot before"] == 2


def test_every_clause_has_a_breach_that_proves_it() -> None:
    proved = {case.expected.clause for case in CASES} | {v.clause for _, v in CHANGES}

    assert proved == set(Clause)


# -- calls of unknown outcome, and snapshots taken while calls run -----------------------------


def test_a_call_of_unknown_outcome_may_have_been_applied() -> None:
    snapshot, history = consistent()
    an_allocation_line_no_one_made(snapshot, history)
    history.append(op(10, "allocateOrder", 1, Outcome.UNKNOWN))

    verdict = check(snapshot, history)

    assert verdict.violations == []
    assert verdict.counts["allocation lines of unknown outcomes"] == 1


def test_a_fill_of_unknown_outcome_may_have_made_a_line_of_its_item_only() -> None:
    snapshot, history = consistent()
    an_allocation_line_no_one_made(snapshot, history)
    history.append(op(10, "fillBackorders", None, Outcome.UNKNOWN, sku="SERIAL"))
    assert check(snapshot, history).clauses == [Clause.ALLOCATION_NO_MAKER]

    history.append(op(11, "fillBackorders", None, Outcome.UNKNOWN, sku="WIDGET"))
    verdict = check(snapshot, history)

    assert verdict.violations == []
    assert verdict.counts["allocation lines of unknown outcomes"] == 1


def filled(s: Snapshot, h: list[Op]) -> None:
    """fillBackorders for WIDGET fills order 1's backorder (2): its allocation line 3."""
    h.append(
        op(10, "fillBackorders", None, sku="WIDGET",
           result={"allocations": {3: (1, 1, 2)}, "orders": {3: 1}})
    )  # fmt: skip
    s.allocations[3] = Allocation(3, 1, 1, 1, 2, 0)
    replace(s.backorders, 1, quantity_allocated=2, status="ALLOCATED")
    replace(s.balances, 1, allocated=6, version=6)
    replace(s.orders, 1, status="ALLOCATED", version=3)


def test_a_fill_seen_to_succeed_made_its_lines_and_a_version_of_each_order() -> None:
    snapshot, history = consistent()
    filled(snapshot, history)

    verdict = check(snapshot, history)

    assert verdict.violations == []
    assert verdict.counts["order versions checked"] == 2
    assert verdict.counts["balance versions checked exactly"] == 1


def test_a_fill_is_held_to_its_answer() -> None:
    snapshot, history = consistent()
    filled(snapshot, history)
    replace(snapshot.orders, 1, version=2)
    replace(snapshot.allocations, 3, balance_id=2)
    snapshot.balances[2] = Balance(2, 1, 2, 1, on_hand=2, allocated=2, version=2)
    snapshot.adjustments[2] = Adjustment(2, 2, 2, "op-11")
    history.append(op(11, "adjustInventory", None, sku="WIDGET", quantity=2,
                      result={"adjustment_id": 2, "balance_id": 2}))  # fmt: skip
    replace(snapshot.balances, 1, allocated=4)

    assert check(snapshot, history).clauses == [
        Clause.ALLOCATION_ALTERED, Clause.ORDER_VERSION_COUNT,
    ]  # fmt: skip


def test_a_cancelled_backorder_may_go_with_its_deleted_line() -> None:
    snapshot, history = consistent()
    history.append(op(10, "cancelBackorder", 2, backorder_id=2))
    history.append(op(11, "deleteSalesOrderLine", 2, line_id=4))
    del snapshot.lines[4]
    replace(snapshot.orders, 2, version=8, status="PACKED")

    assert check(snapshot, history).violations == []
    # On order 1, whose lines no one deleted, it had to be there.
    snapshot, history = consistent()
    history.append(op(10, "cancelBackorder", 1, backorder_id=2))
    replace(snapshot.orders, 1, version=3)
    assert check(snapshot, history).clauses == [Clause.CANCEL_LOST]


def test_a_serialized_line_added_while_allocating_need_not_be_reported() -> None:
    snapshot, history = consistent()
    history.append(op(10, "addSalesOrderLine", 1, sku="SERIAL", quantity=1))
    history.append(op(11, "allocateOrder", 1, result={"allocations": {}, "skipped": [2]}))
    history[-2].end = history[-1].start + 0.1  # the add ended after the allocation began
    snapshot.lines[6] = Line(6, 1, 3, 2, True, 1, 0)
    replace(snapshot.orders, 1, version=3)

    assert check(snapshot, history).violations == []
    history[-2].end = history[-1].start - 0.1  # now it had ended before: line 6 was there
    assert check(snapshot, history).clauses == [Clause.SERIALIZED_NOT_REPORTED]


def test_a_snapshot_knows_the_calls_that_ended_before_it_and_no_later_ones() -> None:
    """The snapshot was fixed between 2.2 and 4.2."""
    ended = op(1, "allocateOrder", 1)  # 1 to 1.5
    overlapping = op(2, "packAllocatedOrder", 1)  # 2 to 2.5
    refused = op(3, "removeAllocationLines", 1, Outcome.REJECTED, ids=[1])
    refused.start, refused.end = 2.1, 3.0
    started_meanwhile = op(4, "cancelBackorder", 1, Outcome.REJECTED, backorder_id=1)
    later = op(5, "deleteBackorder", 1, backorder_id=1)

    seen = as_seen_at([ended, overlapping, refused, started_meanwhile, later], 2.2, 4.2)

    assert [(o.seq, o.outcome, o.end) for o in seen] == [
        (1, Outcome.OK, 1.5),
        (2, Outcome.UNKNOWN, float("inf")),  # it may have committed after the snapshot
        (3, Outcome.REJECTED, 3.0),  # refused: it changed nothing, whenever it ended
        (4, Outcome.UNKNOWN, float("inf")),  # what it names may be newer than the snapshot
    ]
    assert overlapping.outcome is Outcome.OK  # the history itself is left as it was


def test_an_allocation_still_running_at_the_snapshot_is_not_a_violation() -> None:
    """An allocateOrder from 10 to 10.5 that made allocation line 3."""
    snapshot, history = consistent()
    an_allocation_line_no_one_made(snapshot, history)
    allocated = {"allocations": {3: (1, 1, 1)}, "skipped": [2]}
    history.append(op(10, "allocateOrder", 1, result=allocated))
    replace(snapshot.orders, 1, version=3)
    replace(snapshot.balances, 1, version=6)

    assert check(snapshot, as_seen_at(history, 10.2, 10.3)).violations == []
    # A snapshot after it ended must show its line.
    replace(snapshot.orders, 1, version=3)
    assert check(snapshot, as_seen_at(history, 11, 11.1)).violations == []
    without_it, _ = consistent()
    replace(without_it.orders, 1, version=3)
    replace(without_it.balances, 1, version=6)
    assert check(without_it, as_seen_at(history, 11, 11.1)).clauses == [Clause.ALLOCATION_LOST]


# -- on a real database ------------------------------------------------------------------------

SET_UP = [
    'mutation { createItem(input: {sku: "WIDGET", name: "Widget"}) { errors { code } } }',
    'mutation { createItem(input: {sku: "SERIAL", name: "Serial", serialized: true}) '
    "{ errors { code } } }",
    'mutation { createLocation(input: {code: "BIN-1", name: "Bin 1"}) { errors { code } } }',
    'mutation { adjustInventory(input: {sku: "WIDGET", lotNumber: "L1", locationCode: "BIN-1", '
    "quantity: 10}) { errors { code } } }",
    'mutation { createSalesOrder(input: {customer: "C", lines: [{sku: "WIDGET", quantity: 6}, '
    '{sku: "SERIAL", quantity: 1}, {sku: "WIDGET", quantity: 12}]}) '
    "{ salesOrder { id } errors { code } } }",
]
ALLOCATE = "mutation($id: ID!) { allocateOrder(id: $id) { errors { code } } }"
PACK = "mutation($id: ID!) { packAllocatedOrder(id: $id) { errors { code } } }"
RECEIVE = (
    'mutation { adjustInventory(input: {sku: "WIDGET", lotNumber: "L1", locationCode: "BIN-1", '
    "quantity: 5}) { errors { code } } }"
)


async def allocated_packed_and_received(gql: GraphQLClient) -> None:
    """Through the API: an order of 6 + 12 WIDGET and 1 serialized; 10 WIDGET allocated
    (a backorder of 8, the serialized line skipped) and packed; then 5 more received."""
    for document in SET_UP:
        data = await gql.data(document)
        (payload,) = data.values()
        assert payload["errors"] == [], document
    order_id = data["createSalesOrder"]["salesOrder"]["id"]
    allocated = await gql.data(ALLOCATE, id=order_id)
    assert [e["code"] for e in allocated["allocateOrder"]["errors"]] == ["SERIALIZED_ITEM"]
    assert (await gql.data(PACK, id=order_id))["packAllocatedOrder"]["errors"] == []
    assert (await gql.data(RECEIVE))["adjustInventory"]["errors"] == []


@pytest.mark.parametrize(
    ("sql", "at_once", "since"),
    [
        ("UPDATE inventory_balances SET allocated = allocated + 1",
         [Clause.BALANCE_ALLOCATED_UNRESERVED, Clause.LEDGER_UNBALANCED],
         [Clause.BALANCE_CHANGED_UNVERSIONED]),
        ("INSERT INTO movements (balance_id, kind, on_hand_delta, allocated_delta, actor) "
         "SELECT id, 'RECEIPT', 1, 0, 'system' FROM inventory_balances",
         [Clause.LEDGER_UNBALANCED], []),
        ("UPDATE sales_orders SET status = 'ALLOCATED'",
         [Clause.ORDER_STATUS], [Clause.ORDER_CHANGED_UNVERSIONED]),
        ("UPDATE items SET serialized = true WHERE sku = 'WIDGET'",
         [Clause.ALLOCATION_SERIALIZED, Clause.ALLOCATION_SERIALIZED,
          Clause.BACKORDER_SERIALIZED, Clause.ORDER_STATUS],
         [Clause.ORDER_CHANGED_UNVERSIONED]),
        ("UPDATE sales_order_lines SET quantity_cancelled = 1 WHERE line_number = 3",
         [Clause.LINE_OVERCOMMITTED], [Clause.ORDER_CHANGED_UNVERSIONED]),
        ("DELETE FROM packed_line_allocations",
         [Clause.BALANCE_ON_HAND_UNEXPLAINED,
          Clause.ALLOCATION_PACKED_UNRECORDED, Clause.ALLOCATION_PACKED_UNRECORDED,
          Clause.PACKED_LINE_QUANTITY, Clause.PACKED_LINE_QUANTITY], []),
        ("DELETE FROM inventory_adjustments WHERE quantity = 5",
         [Clause.BALANCE_ON_HAND_UNEXPLAINED], []),
    ],
    ids=["allocated", "movement", "status", "serialized", "cancelled", "packed", "adjustment"],
)  # fmt: skip
async def test_breaches_written_to_postgresql_are_read_and_caught(
    gql: GraphQLClient,
    engine: AsyncEngine,
    sql: str,
    at_once: list[Clause],
    since: list[Clause],
) -> None:
    """read_snapshot reads what the clauses need: rows broken behind the services' back
    are caught, and so is a row changed without its version."""
    await allocated_packed_and_received(gql)
    before = await read_snapshot(engine)
    assert check(before).violations == []
    assert len(before.packed) == 2

    async with engine.begin() as conn:
        await conn.execute(text(sql))
    after = await read_snapshot(engine)

    assert check(after).clauses == at_once
    assert compare(before, after).clauses == since
