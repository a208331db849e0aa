"""The sales-order aggregate in memory: backorders, removal, packing, status and changes."""

from __future__ import annotations

from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.domain.errors import DomainError, ErrorCode, Subject
from services.domain.order import (
    AllocationLine,
    Backorder,
    BackorderStatus,
    Change,
    Deleted,
    Inserted,
    OrderLine,
    OrderStatus,
    PackedLine,
    SalesOrder,
    Updated,
    allocation_name,
    backorder_name,
    quantity_allocated,
    quantity_backordered,
    quantity_packed,
)
from services.domain.planner import LineDemand, LinePlan, Pick

BRASS = 1
SCREW = 2
SERIAL = 3


class Ids:
    """Hands out ids the way a repository would after an insert."""

    def __init__(self) -> None:
        self._next = count(100)

    def assign(self, order: SalesOrder) -> None:
        for line in order.lines:
            if line.id is None:
                line.id = next(self._next)
        for allocation in order.allocations:
            if allocation.id is None:
                allocation.id = next(self._next)
        for backorder in order.backorders:
            if backorder.id is None:
                backorder.id = next(self._next)


def make_order(*lines: OrderLine) -> SalesOrder:
    return SalesOrder(id=1, version=1, lines=list(lines), allocations=[], backorders=[])


def make_line(
    line_id: int, quantity: int, item_id: int = BRASS, *, serialized: bool = False
) -> OrderLine:
    return OrderLine(
        id=line_id, line_number=line_id, item_id=item_id, serialized=serialized, quantity=quantity
    )


def plan(line_id: int, shortfall: int, *picks: tuple[int, int]) -> LinePlan:
    """A line plan from (balance id, quantity) picks; lot and location follow the balance."""
    return LinePlan(
        line_id,
        tuple(Pick(line_id, balance, balance * 10, balance * 100, qty) for balance, qty in picks),
        shortfall,
    )


def allocate(order: SalesOrder, ids: Ids, available: dict[int, int]) -> list[AllocationLine]:
    """Allocate the order's demand from one balance per item (balance id = item id)."""
    plans = []
    for demand in order.demand():
        take = min(demand.open_demand, available.get(demand.item_id, 0))
        available[demand.item_id] = available.get(demand.item_id, 0) - take
        picks = [(demand.item_id, take)] if take > 0 else []
        plans.append(plan(demand.line_id, demand.open_demand - take, *picks))
    created = order.record_allocation(plans)
    ids.assign(order)
    return created


def backorders_of(order: SalesOrder, line_id: int) -> list[Backorder]:
    return [b for b in order.backorders if b.line_id == line_id]


def open_backorders(order: SalesOrder, line_id: int) -> list[Backorder]:
    return [b for b in backorders_of(order, line_id) if b.status is BackorderStatus.OPEN]


def described(changes: list[Change]) -> list[tuple[str, str]]:
    return [(type(c).__name__, type(c.obj).__name__) for c in changes]


def raises_code(code: ErrorCode) -> pytest.RaisesExc[DomainError]:
    return pytest.raises(DomainError, check=lambda e: e.code is code)


def facts(error: DomainError) -> tuple[ErrorCode, str, Subject | None, int | None]:
    """What the client is told: code, message, and which entity or argument at which position."""
    return (error.code, error.message, error.subject, error.index)


def quantities(order: SalesOrder, line_id: int) -> tuple[int, int, int]:
    """(allocated, packed, open backorder remaining) of one line."""
    backorder = order.open_backorder(line_id)
    return (
        order.allocated(line_id),
        order.packed(line_id),
        backorder.remaining if backorder else 0,
    )


# -- the version the client expects ------------------------------------------------------------


@pytest.mark.parametrize("expected", [None, 3])
def test_an_order_passes_the_version_check_when_none_is_expected_or_it_is_the_one_expected(
    expected: int | None,
) -> None:
    order = make_order(make_line(1, 10))
    order.version = 3

    order.check_version(expected)  # fails the test by raising VERSION_CONFLICT


def test_an_order_at_another_version_than_expected_is_a_conflict_naming_its_version() -> None:
    order = make_order(make_line(1, 10))
    order.version = 3

    with pytest.raises(DomainError) as caught:
        order.check_version(2)

    assert facts(caught.value) == (
        ErrorCode.VERSION_CONFLICT,
        "The sales order has changed; its current version is 3.",
        Subject.EXPECTED_VERSION,
        None,
    )
    assert caught.value.current_version == 3


# -- backorders after allocation ------------------------------------------------------------


def test_a_line_allocated_in_full_gets_no_backorder() -> None:
    order = make_order(make_line(1, 10))

    allocate(order, Ids(), {BRASS: 10})

    assert order.allocated(1) == 10
    assert order.backorders == []


def test_a_short_line_gets_exactly_one_open_backorder_for_its_shortfall() -> None:
    order = make_order(make_line(1, 25, SCREW))

    allocate(order, Ids(), {SCREW: 22})

    (backorder,) = order.backorders
    assert backorder.status is BackorderStatus.OPEN
    assert (backorder.quantity, backorder.quantity_allocated, backorder.remaining) == (3, 0, 3)
    assert backorder.line_id == 1


def test_a_line_with_no_stock_at_all_is_backordered_in_full() -> None:
    order = make_order(make_line(1, 7))

    created = allocate(order, Ids(), {})

    assert created == []
    (backorder,) = order.backorders
    assert (backorder.status, backorder.remaining) == (BackorderStatus.OPEN, 7)


def test_allocating_again_without_new_stock_keeps_one_open_backorder_for_the_same_quantity() -> (
    None
):
    order = make_order(make_line(1, 10))
    ids = Ids()
    allocate(order, ids, {BRASS: 4})

    allocate(order, ids, {})

    assert [(b.status, b.quantity, b.remaining) for b in order.backorders] == [
        (BackorderStatus.OPEN, 6, 6)
    ]


def test_filling_part_of_an_open_backorder_raises_its_quantity_allocated() -> None:
    order = make_order(make_line(1, 10))
    ids = Ids()
    allocate(order, ids, {BRASS: 4})
    (backorder,) = order.backorders

    allocate(order, ids, {BRASS: 2})

    assert order.backorders == [backorder]
    assert backorder.status is BackorderStatus.OPEN
    assert (backorder.quantity, backorder.quantity_allocated, backorder.remaining) == (6, 2, 4)
    assert order.allocated(1) == 6


def test_filling_an_open_backorder_completely_checks_it_off_as_allocated() -> None:
    order = make_order(make_line(1, 25, SCREW))
    ids = Ids()
    allocate(order, ids, {SCREW: 22})
    (backorder,) = order.backorders

    created = allocate(order, ids, {SCREW: 100})

    assert [a.quantity for a in created] == [3]
    assert order.backorders == [backorder]
    assert backorder.status is BackorderStatus.ALLOCATED
    assert (backorder.quantity, backorder.quantity_allocated, backorder.remaining) == (3, 3, 0)
    assert order.open_backorder(1) is None


def test_a_line_still_short_after_its_backorder_is_filled_gets_a_new_open_backorder() -> None:
    order = make_order(make_line(1, 10))
    ids = Ids()
    allocate(order, ids, {BRASS: 7})  # backorder for 3
    order.change_line_quantity(1, 14)  # open demand now 7, backorder still 3
    (first,) = order.backorders

    allocate(order, ids, {BRASS: 5})  # fills the 3, and 2 more are still short

    assert first.status is BackorderStatus.ALLOCATED
    assert (first.quantity, first.quantity_allocated) == (3, 3)
    (second,) = open_backorders(order, 1)
    assert second is not first
    assert (second.quantity, second.quantity_allocated, second.remaining) == (2, 0, 2)


def test_each_short_line_of_an_order_gets_its_own_backorder() -> None:
    order = make_order(make_line(1, 10, BRASS), make_line(2, 10, SCREW), make_line(3, 4, BRASS))

    allocate(order, Ids(), {BRASS: 12, SCREW: 10})

    assert [(b.line_id, b.remaining) for b in order.backorders] == [(3, 2)]
    assert quantities(order, 1) == (10, 0, 0)
    assert quantities(order, 2) == (10, 0, 0)
    assert quantities(order, 3) == (2, 0, 2)


def test_the_walk_through_in_memory() -> None:
    order = make_order(make_line(1, 25, BRASS), make_line(2, 25, SCREW))
    ids = Ids()
    order.record_allocation([plan(1, 0, (11, 15), (12, 10)), plan(2, 3, (13, 22))])
    ids.assign(order)
    (backorder,) = order.backorders
    assert (backorder.line_id, backorder.remaining, backorder.status) == (
        2,
        3,
        BackorderStatus.OPEN,
    )
    assert order.status() is OrderStatus.PARTIALLY_ALLOCATED

    first_pack = order.pack()

    assert [(p.line_id, p.quantity) for p in first_pack] == [(1, 25), (2, 22)]
    assert all(a.quantity_packed == a.quantity for a in order.allocations)
    assert (backorder.status, backorder.remaining) == (BackorderStatus.OPEN, 3)
    assert order.status() is OrderStatus.PARTIALLY_PACKED

    created = order.record_allocation([plan(2, 0, (14, 3))])
    ids.assign(order)

    assert [(a.line_id, a.quantity) for a in created] == [(2, 3)]
    assert backorder.status is BackorderStatus.ALLOCATED
    assert order.status() is OrderStatus.PARTIALLY_PACKED

    second_pack = order.pack()

    assert [(p.line_id, p.quantity) for p in second_pack] == [(2, 3)]
    assert created[0].quantity_packed == 3
    assert order.status() is OrderStatus.PACKED


def test_an_allocation_line_records_the_balance_lot_and_location_it_was_picked_from() -> None:
    order = make_order(make_line(1, 10))

    (allocation,) = order.record_allocation([plan(1, 0, (3, 10))])

    assert (
        allocation.id,
        allocation.line_id,
        allocation.balance_id,
        allocation.lot_id,
        allocation.location_id,
        allocation.quantity,
        allocation.quantity_packed,
    ) == (None, 1, 3, 30, 300, 10, 0)


def test_completing_a_partly_filled_backorder_counts_all_that_was_allocated_to_it() -> None:
    order = make_order(make_line(1, 10))
    ids = Ids()
    allocate(order, ids, {BRASS: 4})  # backorder for 6
    allocate(order, ids, {BRASS: 2})  # 2 of them filled, 4 remaining
    (backorder,) = order.backorders

    allocate(order, ids, {BRASS: 4})

    assert order.backorders == [backorder]
    assert backorder.status is BackorderStatus.ALLOCATED
    assert (backorder.quantity, backorder.quantity_allocated, backorder.remaining) == (6, 6, 0)


# -- changing a line's quantity -------------------------------------------------------------


def test_lowering_a_line_quantity_shrinks_its_open_backorder() -> None:
    order = make_order(make_line(1, 10))
    allocate(order, Ids(), {BRASS: 4})  # backorder for 6

    order.change_line_quantity(1, 7)

    (backorder,) = order.backorders
    assert (backorder.status, backorder.quantity, backorder.remaining) == (
        BackorderStatus.OPEN,
        3,
        3,
    )
    assert order.line(1).quantity == 7


def test_lowering_a_line_to_what_is_allocated_drops_a_backorder_that_never_got_stock() -> None:
    order = make_order(make_line(1, 10))
    allocate(order, Ids(), {BRASS: 4})
    (backorder,) = order.backorders

    order.change_line_quantity(1, 4)

    assert order.backorders == []
    assert Deleted(backorder) in order.changes


def test_lowering_a_line_to_what_is_allocated_checks_off_a_backorder_that_got_some_stock() -> None:
    order = make_order(make_line(1, 10))
    ids = Ids()
    allocate(order, ids, {BRASS: 4})  # backorder for 6
    allocate(order, ids, {BRASS: 2})  # 2 of them filled, 4 remaining
    (backorder,) = order.backorders

    order.change_line_quantity(1, 6)

    assert order.backorders == [backorder]
    assert backorder.status is BackorderStatus.ALLOCATED
    assert (backorder.quantity, backorder.quantity_allocated, backorder.remaining) == (2, 2, 0)
    assert order.open_backorder(1) is None


def test_raising_a_line_quantity_leaves_the_backorder_to_the_next_allocation() -> None:
    order = make_order(make_line(1, 10))
    ids = Ids()
    allocate(order, ids, {BRASS: 4})

    order.change_line_quantity(1, 12)
    allocate(order, ids, {})

    (backorder,) = order.backorders
    assert (backorder.status, backorder.remaining) == (BackorderStatus.OPEN, 8)


def test_a_line_quantity_below_what_is_allocated_is_refused_and_nothing_changes() -> None:
    order = make_order(make_line(1, 10))
    allocate(order, Ids(), {BRASS: 6})
    order.changes.clear()

    with raises_code(ErrorCode.QUANTITY_BELOW_ALLOCATED) as caught:
        order.change_line_quantity(1, 5)

    assert facts(caught.value) == (
        ErrorCode.QUANTITY_BELOW_ALLOCATED,
        "Quantity 5 is below the 6 already allocated.",
        Subject.QUANTITY,
        None,
    )
    assert order.line(1).quantity == 10
    assert order.backorders[0].remaining == 4
    assert order.changes == []


def test_a_line_quantity_equal_to_what_is_allocated_is_accepted() -> None:
    order = make_order(make_line(1, 10))
    allocate(order, Ids(), {BRASS: 6})

    order.change_line_quantity(1, 6)

    assert order.line(1).quantity == 6
    assert order.demand() == []


@pytest.mark.parametrize("quantity", [0, -3])
def test_a_line_quantity_that_is_not_positive_is_invalid(quantity: int) -> None:
    order = make_order(make_line(1, 10))

    with raises_code(ErrorCode.INVALID_QUANTITY) as caught:
        order.change_line_quantity(1, quantity)

    assert (caught.value.subject, caught.value.index) == (Subject.QUANTITY, None)

    assert order.line(1).quantity == 10


def test_changing_the_quantity_of_an_unknown_line_is_not_found() -> None:
    order = make_order(make_line(1, 10))

    with raises_code(ErrorCode.NOT_FOUND) as caught:
        order.change_line_quantity(99, 5)

    assert facts(caught.value) == (
        ErrorCode.NOT_FOUND,
        "Sales order line not found.",
        Subject.LINE,
        None,
    )


def test_lowering_a_line_with_cancelled_quantity_gives_up_the_cancelled_quantity_first() -> None:
    order = make_order(make_line(1, 10))
    allocate(order, Ids(), {BRASS: 4})
    (backorder,) = order.backorders
    assert backorder.id is not None
    order.cancel_backorder(backorder.id, None)  # 6 cancelled

    order.change_line_quantity(1, 7)

    line = order.line(1)
    assert (line.quantity, line.quantity_cancelled) == (7, 3)
    assert order.open_demand(line) == 0


def test_lowering_a_line_records_updates_of_the_line_and_of_its_shrunk_backorder() -> None:
    order = make_order(make_line(1, 10))
    allocate(order, Ids(), {BRASS: 4})
    (backorder,) = order.backorders
    order.changes.clear()

    order.change_line_quantity(1, 7)

    assert [(type(c), c.obj) for c in order.changes] == [
        (Updated, order.line(1)),
        (Updated, backorder),
    ]


def test_raising_a_line_quantity_records_only_the_lines_update() -> None:
    order = make_order(make_line(1, 10))
    allocate(order, Ids(), {BRASS: 4})
    (backorder,) = order.backorders
    order.changes.clear()

    order.change_line_quantity(1, 12)

    assert [(type(c), c.obj) for c in order.changes] == [(Updated, order.line(1))]
    assert (backorder.quantity, backorder.remaining) == (6, 6)


# -- adding and deleting lines ----------------------------------------------------------------


def test_the_first_line_of_an_empty_order_is_line_number_one() -> None:
    order = make_order()

    added = order.add_line(BRASS, False, 4)

    assert (
        added.id,
        added.line_number,
        added.item_id,
        added.serialized,
        added.quantity,
        added.quantity_cancelled,
    ) == (None, 1, BRASS, False, 4, 0)
    assert order.lines == [added]
    assert [(type(c), c.obj) for c in order.changes] == [(Inserted, added)]


def test_a_new_line_is_numbered_after_the_highest_line_number_not_the_line_count() -> None:
    order = make_order(make_line(1, 10), make_line(5, 3, SCREW))  # lines 2 to 4 were deleted

    assert order.add_line(SERIAL, True, 1).line_number == 6


def test_adding_a_line_of_no_quantity_is_refused_and_adds_nothing() -> None:
    order = make_order(make_line(1, 10))

    with pytest.raises(DomainError) as caught:
        order.add_line(SCREW, False, 0)

    assert facts(caught.value) == (
        ErrorCode.INVALID_QUANTITY,
        "Quantity must be a positive whole number.",
        Subject.QUANTITY,
        None,
    )
    assert [line.id for line in order.lines] == [1]
    assert order.changes == []


def test_deleting_a_line_deletes_every_backorder_of_it_and_no_other() -> None:
    brass = make_line(1, 10)
    brass.quantity_cancelled = 4
    order = make_order(brass, make_line(2, 5, SCREW))
    cancelled = Backorder(7, 1, 4, status=BackorderStatus.CANCELLED)
    screws = Backorder(8, 2, 5)
    still_open = Backorder(9, 1, 6)
    order.backorders.extend([cancelled, screws, still_open])

    order.delete_line(1)

    assert [line.id for line in order.lines] == [2]
    assert order.backorders == [screws]
    assert [(type(c), c.obj) for c in order.changes] == [
        (Deleted, cancelled),
        (Deleted, still_open),
        (Deleted, brass),
    ]


def test_a_line_with_even_one_allocated_unit_cannot_be_deleted() -> None:
    order = make_order(make_line(1, 10), make_line(2, 5, SCREW))
    order.record_allocation([plan(1, 9, (1, 1))])
    order.changes.clear()

    with pytest.raises(DomainError) as caught:
        order.delete_line(1)

    assert facts(caught.value) == (
        ErrorCode.LINE_HAS_ALLOCATIONS,
        "Remove the line's allocation lines before deleting it.",
        Subject.LINE,
        None,
    )
    assert [line.id for line in order.lines] == [1, 2]
    assert [(b.line_id, b.remaining) for b in order.backorders] == [(1, 9)]
    assert order.changes == []


def test_another_lines_allocation_lines_do_not_stop_a_line_being_deleted() -> None:
    order = make_order(make_line(1, 10), make_line(2, 5, SCREW))
    order.record_allocation([plan(1, 0, (1, 10))])

    order.delete_line(2)

    assert [line.id for line in order.lines] == [1]
    assert order.allocated(1) == 10


def test_deleting_an_unknown_line_is_not_found() -> None:
    order = make_order(make_line(1, 10))

    with pytest.raises(DomainError) as caught:
        order.delete_line(99)

    assert facts(caught.value) == (
        ErrorCode.NOT_FOUND,
        "Sales order line not found.",
        Subject.LINE,
        None,
    )
    assert [line.id for line in order.lines] == [1]


# -- cancelling and deleting backorders -----------------------------------------------------


def test_cancelling_a_backorder_moves_its_remaining_into_the_lines_quantity_cancelled() -> None:
    order = make_order(make_line(1, 10))
    allocate(order, Ids(), {BRASS: 5})
    (backorder,) = order.backorders
    assert backorder.id is not None

    cancelled = order.cancel_backorder(backorder.id, "customer said so")

    assert cancelled is backorder
    assert backorder.status is BackorderStatus.CANCELLED
    assert backorder.cancel_reason == "customer said so"
    assert order.line(1).quantity_cancelled == 5
    assert order.open_demand(order.line(1)) == 0


def test_later_demand_excludes_cancelled_quantity_so_allocation_does_not_recreate_it() -> None:
    order = make_order(make_line(1, 10))
    ids = Ids()
    allocate(order, ids, {BRASS: 5})
    (backorder,) = order.backorders
    assert backorder.id is not None
    order.cancel_backorder(backorder.id, None)

    assert order.demand() == []
    created = allocate(order, ids, {BRASS: 100})

    assert created == []
    assert order.allocated(1) == 5
    assert [b.status for b in order.backorders] == [BackorderStatus.CANCELLED]


def test_cancelling_a_partly_filled_backorder_cancels_only_its_remaining() -> None:
    order = make_order(make_line(1, 10))
    ids = Ids()
    allocate(order, ids, {BRASS: 4})  # backorder for 6
    allocate(order, ids, {BRASS: 2})  # 4 remaining
    (backorder,) = order.backorders
    assert backorder.id is not None

    order.cancel_backorder(backorder.id, None)

    assert order.line(1).quantity_cancelled == 4
    assert order.demand() == []


def test_the_walk_through_cancel_after_removing_the_allocations() -> None:
    order = make_order(make_line(1, 10))
    ids = Ids()
    allocate(order, ids, {BRASS: 5})
    order.remove_allocations([a.id for a in order.allocations if a.id is not None])
    (backorder,) = order.backorders
    assert (backorder.status, backorder.remaining) == (BackorderStatus.OPEN, 5)
    assert backorder.id is not None

    order.cancel_backorder(backorder.id, None)
    allocate(order, ids, {BRASS: 5})

    assert order.allocated(1) == 5
    assert [b.status for b in order.backorders] == [BackorderStatus.CANCELLED]


def test_a_deleted_backorder_is_recreated_by_the_next_allocation_if_the_line_is_still_short() -> (
    None
):
    order = make_order(make_line(1, 10))
    ids = Ids()
    allocate(order, ids, {BRASS: 5})
    (backorder,) = order.backorders
    assert backorder.id is not None

    deleted = order.delete_backorder(backorder.id)

    assert deleted is backorder
    assert order.backorders == []
    assert order.line(1).quantity_cancelled == 0
    allocate(order, ids, {BRASS: 1})
    (recreated,) = order.backorders
    assert recreated is not backorder
    assert (recreated.status, recreated.remaining) == (BackorderStatus.OPEN, 4)


def test_cancelling_a_second_backorder_adds_to_what_the_line_had_cancelled_already() -> None:
    order = make_order(make_line(1, 10))
    ids = Ids()
    allocate(order, ids, {BRASS: 4})
    (first,) = order.backorders
    assert first.id is not None
    order.cancel_backorder(first.id, None)  # 6 cancelled
    order.change_line_quantity(1, 15)
    allocate(order, ids, {})  # a new backorder for the 5 added
    (second,) = open_backorders(order, 1)
    assert second.id is not None

    order.cancel_backorder(second.id, None)

    assert order.line(1).quantity_cancelled == 11
    assert order.demand() == []


def _with_backorder_in(status: BackorderStatus) -> tuple[SalesOrder, Backorder]:
    order = make_order(make_line(1, 10))
    backorder = Backorder(id=7, line_id=1, quantity=4, quantity_allocated=0, status=status)
    if status is BackorderStatus.ALLOCATED:
        backorder.quantity_allocated = 4
    order.backorders.append(backorder)
    return order, backorder


@pytest.mark.parametrize("status", [BackorderStatus.ALLOCATED, BackorderStatus.CANCELLED])
def test_cancelling_a_backorder_that_is_not_open_is_refused(status: BackorderStatus) -> None:
    order, backorder = _with_backorder_in(status)

    with raises_code(ErrorCode.BACKORDER_NOT_OPEN) as caught:
        order.cancel_backorder(7, None)

    assert facts(caught.value) == (
        ErrorCode.BACKORDER_NOT_OPEN,
        f"The backorder is {status.value}, not OPEN.",
        Subject.BACKORDER,
        None,
    )

    assert backorder.status is status
    assert order.line(1).quantity_cancelled == 0
    assert order.changes == []


@pytest.mark.parametrize("status", [BackorderStatus.ALLOCATED, BackorderStatus.CANCELLED])
def test_deleting_a_backorder_that_is_not_open_is_refused(status: BackorderStatus) -> None:
    order, backorder = _with_backorder_in(status)

    with raises_code(ErrorCode.BACKORDER_NOT_OPEN) as caught:
        order.delete_backorder(7)

    assert facts(caught.value) == (
        ErrorCode.BACKORDER_NOT_OPEN,
        f"The backorder is {status.value}, not OPEN.",
        Subject.BACKORDER,
        None,
    )

    assert order.backorders == [backorder]
    assert order.changes == []


def test_cancelling_or_deleting_an_unknown_backorder_is_not_found() -> None:
    order, _ = _with_backorder_in(BackorderStatus.OPEN)

    with raises_code(ErrorCode.NOT_FOUND) as cancelling:
        order.cancel_backorder(8, None)
    with raises_code(ErrorCode.NOT_FOUND) as deleting:
        order.delete_backorder(8)

    not_found = (ErrorCode.NOT_FOUND, "Backorder not found.", Subject.BACKORDER, None)
    assert facts(cancelling.value) == not_found
    assert facts(deleting.value) == not_found
    assert [b.id for b in order.backorders] == [7]


# -- removing allocation lines --------------------------------------------------------------


def test_removing_allocation_lines_releases_them_and_keeps_the_backorders() -> None:
    order = make_order(make_line(1, 10), make_line(2, 4, SCREW))
    allocate(order, Ids(), {BRASS: 5, SCREW: 4})
    ids = [a.id for a in order.allocations if a.id is not None]

    removed = order.remove_allocations(ids)

    assert sorted(a.id for a in removed if a.id is not None) == sorted(ids)
    assert order.allocations == []
    assert [(b.line_id, b.status, b.remaining) for b in order.backorders] == [
        (1, BackorderStatus.OPEN, 5)
    ]
    assert order.status() is OrderStatus.OPEN


def test_removing_some_allocation_lines_leaves_the_others() -> None:
    order = make_order(make_line(1, 10), make_line(2, 4, SCREW))
    allocate(order, Ids(), {BRASS: 10, SCREW: 4})
    brass, screw = order.allocations
    assert brass.id is not None

    order.remove_allocations([brass.id])

    assert order.allocations == [screw]
    assert order.open_demand(order.line(1)) == 10


def test_removing_a_packed_allocation_line_is_refused_and_nothing_is_removed() -> None:
    order = make_order(make_line(1, 10), make_line(2, 4, SCREW))
    ids = Ids()
    order.record_allocation([plan(1, 0, (1, 10))])
    ids.assign(order)
    order.pack()
    order.record_allocation([plan(2, 0, (2, 4))])
    ids.assign(order)
    packed, unpacked = order.allocations
    assert packed.id is not None
    assert unpacked.id is not None
    order.changes.clear()

    with raises_code(ErrorCode.ALLOCATION_PACKED) as caught:
        order.remove_allocations([unpacked.id, packed.id])

    assert facts(caught.value) == (
        ErrorCode.ALLOCATION_PACKED,
        "An allocation line with packed quantity cannot be removed.",
        Subject.ALLOCATION,
        1,
    )
    assert order.allocations == [packed, unpacked]
    assert order.changes == []


def test_removing_an_allocation_line_with_even_one_unit_packed_is_refused() -> None:
    order = make_order(make_line(1, 10))
    order.allocations.append(AllocationLine(5, 1, 1, 10, 100, quantity=10, quantity_packed=1))

    with raises_code(ErrorCode.ALLOCATION_PACKED) as caught:
        order.remove_allocations([5])

    assert (caught.value.subject, caught.value.index) == (Subject.ALLOCATION, 0)
    assert [a.id for a in order.allocations] == [5]


def test_removing_an_allocation_line_that_is_gone_is_not_found_at_its_position() -> None:
    order = make_order(make_line(1, 10))
    allocate(order, Ids(), {BRASS: 10})
    (allocation,) = order.allocations
    assert allocation.id is not None
    order.changes.clear()

    with pytest.raises(DomainError) as caught:
        order.remove_allocations([allocation.id, 999])

    assert facts(caught.value) == (
        ErrorCode.NOT_FOUND,
        "Allocation line not found.",
        Subject.ALLOCATION,
        1,
    )
    assert order.allocations == [allocation]
    assert order.changes == []


def test_naming_the_same_allocation_line_twice_removes_it_once() -> None:
    # Released once: the stock handed back to the balance is summed over `removed`, so a
    # line counted twice would hand back its quantity twice.
    order = make_order(make_line(1, 10))
    allocate(order, Ids(), {BRASS: 10})
    (allocation,) = order.allocations
    assert allocation.id is not None
    order.changes.clear()

    removed = order.remove_allocations([allocation.id, allocation.id])

    assert removed == [allocation]
    assert order.allocations == []
    assert [(type(c), c.obj) for c in order.changes] == [(Deleted, allocation)]


# -- packing --------------------------------------------------------------------------------


def test_pack_gives_one_packed_line_per_sales_order_line_with_unpacked_stock() -> None:
    order = make_order(make_line(1, 25), make_line(2, 25, SCREW), make_line(3, 5, SERIAL))
    order.record_allocation([plan(1, 0, (11, 15), (12, 10)), plan(2, 3, (13, 22))])
    Ids().assign(order)
    order.changes.clear()

    packed = order.pack()

    assert [(p.line_id, p.quantity) for p in packed] == [(1, 25), (2, 22)]
    assert [[a.balance_id for a in p.allocations] for p in packed] == [[11, 12], [13]]
    assert all(isinstance(p, PackedLine) and p.id is None for p in packed)
    assert [(a.quantity, a.quantity_packed) for a in order.allocations] == [
        (15, 15),
        (10, 10),
        (22, 22),
    ]
    assert described(order.changes) == [
        ("Updated", "AllocationLine"),
        ("Updated", "AllocationLine"),
        ("Inserted", "PackedLine"),
        ("Updated", "AllocationLine"),
        ("Inserted", "PackedLine"),
    ]


def test_a_second_pack_packs_only_what_was_allocated_since() -> None:
    order = make_order(make_line(1, 10), make_line(2, 4, SCREW))
    order.record_allocation([plan(1, 0, (1, 10))])
    Ids().assign(order)
    order.pack()
    order.record_allocation([plan(2, 0, (2, 4))])

    packed = order.pack()

    assert [(p.line_id, p.quantity) for p in packed] == [(2, 4)]
    assert order.packed(1) == 10
    assert order.packed(2) == 4


def test_packing_an_order_with_no_allocations_is_nothing_to_pack() -> None:
    order = make_order(make_line(1, 10))

    with raises_code(ErrorCode.NOTHING_TO_PACK) as caught:
        order.pack()

    assert facts(caught.value) == (
        ErrorCode.NOTHING_TO_PACK,
        "The order has no allocated quantity left to pack.",
        Subject.ORDER,
        None,
    )

    assert order.changes == []


def test_packing_an_order_already_packed_is_nothing_to_pack() -> None:
    order = make_order(make_line(1, 10))
    allocate(order, Ids(), {BRASS: 10})
    order.pack()
    order.changes.clear()

    with raises_code(ErrorCode.NOTHING_TO_PACK):
        order.pack()

    assert order.changes == []
    assert order.packed(1) == 10


def test_an_allocation_line_of_a_single_unit_is_packed() -> None:
    order = make_order(make_line(1, 5))
    order.record_allocation([plan(1, 4, (1, 1))])

    packed = order.pack()

    assert [(p.line_id, p.quantity) for p in packed] == [(1, 1)]
    assert [(a.quantity, a.quantity_packed) for a in order.allocations] == [(1, 1)]


def test_a_line_not_yet_saved_gets_no_packed_line() -> None:
    order = make_order(make_line(1, 10))
    order.record_allocation([plan(1, 0, (1, 10))])
    order.add_line(SCREW, False, 3)  # no id until the repository inserts it
    order.changes.clear()

    packed = order.pack()

    assert [(p.line_id, p.quantity) for p in packed] == [(1, 10)]
    assert described(order.changes) == [("Updated", "AllocationLine"), ("Inserted", "PackedLine")]


# -- demand -----------------------------------------------------------------------------------


def test_demand_is_quantity_less_allocated_less_cancelled() -> None:
    brass = make_line(1, 10)
    brass.quantity_cancelled = 2
    order = make_order(brass, make_line(2, 6, SCREW))
    order.allocations.append(AllocationLine(5, 1, 1, 10, 100, quantity=3))

    assert order.demand() == [LineDemand(1, BRASS, 5), LineDemand(2, SCREW, 6)]


def test_serialized_lines_are_never_in_demand() -> None:
    order = make_order(make_line(1, 5, SERIAL, serialized=True), make_line(2, 3))

    assert [d.line_id for d in order.demand()] == [2]
    assert [line.id for line in order.serialized_lines()] == [1]


def test_serialized_lines_never_get_allocations_or_backorders() -> None:
    order = make_order(make_line(1, 5, SERIAL, serialized=True), make_line(2, 3))

    allocate(order, Ids(), {SERIAL: 100, BRASS: 1})

    assert {a.line_id for a in order.allocations} == {2}
    assert {b.line_id for b in order.backorders} == {2}


def test_lines_fully_allocated_and_lines_not_yet_saved_are_not_in_demand() -> None:
    order = make_order(make_line(1, 4))
    allocate(order, Ids(), {BRASS: 4})
    order.add_line(SCREW, False, 3)  # no id until the repository inserts it

    assert order.demand() == []


def test_a_lines_figures_count_every_allocation_line_and_only_open_backorders_remaining() -> None:
    allocations = [
        AllocationLine(1, 1, 1, 10, 100, quantity=5, quantity_packed=5),
        AllocationLine(2, 1, 2, 20, 200, quantity=3),
    ]
    backorders = [
        Backorder(3, 1, 6, quantity_allocated=2),
        Backorder(4, 1, 3, quantity_allocated=3, status=BackorderStatus.ALLOCATED),
        Backorder(5, 1, 9, quantity_allocated=2, status=BackorderStatus.CANCELLED),
    ]

    assert quantity_allocated(allocations) == 8
    assert quantity_packed(allocations) == 5
    assert quantity_backordered(backorders) == 4


def test_a_line_with_no_allocation_lines_or_backorders_has_figures_of_zero() -> None:
    assert (quantity_allocated([]), quantity_packed([]), quantity_backordered([])) == (0, 0, 0)


# -- status ------------------------------------------------------------------------------------


def test_an_order_with_nothing_allocated_is_open() -> None:
    assert make_order(make_line(1, 10), make_line(2, 5, SCREW)).status() is OrderStatus.OPEN


def test_an_order_with_some_allocated_is_partially_allocated() -> None:
    order = make_order(make_line(1, 10), make_line(2, 5, SCREW))
    allocate(order, Ids(), {BRASS: 10})

    assert order.status() is OrderStatus.PARTIALLY_ALLOCATED


def test_an_order_with_a_single_unit_allocated_is_partially_allocated() -> None:
    order = make_order(make_line(1, 10))
    order.record_allocation([plan(1, 9, (1, 1))])

    assert order.status() is OrderStatus.PARTIALLY_ALLOCATED


def test_an_order_with_everything_allocated_is_allocated() -> None:
    order = make_order(make_line(1, 10), make_line(2, 5, SCREW))
    allocate(order, Ids(), {BRASS: 10, SCREW: 5})

    assert order.status() is OrderStatus.ALLOCATED


def test_an_order_whose_shortfall_was_cancelled_counts_as_allocated() -> None:
    order = make_order(make_line(1, 10))
    allocate(order, Ids(), {BRASS: 6})
    (backorder,) = order.backorders
    assert backorder.id is not None
    assert order.status() is OrderStatus.PARTIALLY_ALLOCATED

    order.cancel_backorder(backorder.id, None)

    assert order.status() is OrderStatus.ALLOCATED


def test_an_order_with_some_packed_is_partially_packed() -> None:
    order = make_order(make_line(1, 10), make_line(2, 5, SCREW))
    ids = Ids()
    allocate(order, ids, {BRASS: 10})
    order.pack()
    allocate(order, ids, {SCREW: 5})

    assert order.status() is OrderStatus.PARTIALLY_PACKED


def test_an_order_with_a_single_unit_packed_is_partially_packed() -> None:
    order = make_order(make_line(1, 10))
    order.record_allocation([plan(1, 9, (1, 1))])
    order.pack()

    assert order.status() is OrderStatus.PARTIALLY_PACKED


def test_an_order_with_everything_packed_is_packed() -> None:
    order = make_order(make_line(1, 10), make_line(2, 5, SCREW))
    allocate(order, Ids(), {BRASS: 10, SCREW: 5})
    order.pack()

    assert order.status() is OrderStatus.PACKED


def test_removing_every_allocation_line_returns_the_order_to_open() -> None:
    order = make_order(make_line(1, 10))
    allocate(order, Ids(), {BRASS: 10})
    assert order.status() is OrderStatus.ALLOCATED

    order.remove_allocations([a.id for a in order.allocations if a.id is not None])

    assert order.status() is OrderStatus.OPEN


# -- recorded changes ------------------------------------------------------------------------


def test_an_allocation_records_inserted_allocation_lines_and_the_new_backorder() -> None:
    order = make_order(make_line(1, 25, BRASS), make_line(2, 25, SCREW))

    created = order.record_allocation([plan(1, 0, (11, 15), (12, 10)), plan(2, 3, (13, 22))])

    assert described(order.changes) == [
        ("Inserted", "AllocationLine"),
        ("Inserted", "AllocationLine"),
        ("Inserted", "AllocationLine"),
        ("Inserted", "Backorder"),
    ]
    assert [c.obj for c in order.changes[:3]] == created
    assert order.changes[3].obj is order.backorders[0]
    assert all(a.id is None for a in created)


def test_allocating_again_with_no_new_stock_records_no_change() -> None:
    # No change means the order is not saved and its version stays (SPEC section 5).
    order = make_order(make_line(1, 10))
    ids = Ids()
    allocate(order, ids, {BRASS: 4})
    order.changes.clear()

    allocate(order, ids, {})

    assert order.changes == []


def test_filling_a_backorder_records_the_insert_and_the_backorder_update() -> None:
    order = make_order(make_line(1, 10))
    ids = Ids()
    allocate(order, ids, {BRASS: 7})
    (backorder,) = order.backorders
    order.changes.clear()

    allocate(order, ids, {BRASS: 3})

    assert described(order.changes) == [
        ("Inserted", "AllocationLine"),
        ("Updated", "Backorder"),
    ]
    assert isinstance(order.changes[1], Updated)
    assert order.changes[1].obj is backorder


def test_cancelling_a_backorder_records_updates_of_the_line_and_the_backorder() -> None:
    order = make_order(make_line(1, 10))
    allocate(order, Ids(), {BRASS: 7})
    (backorder,) = order.backorders
    assert backorder.id is not None
    order.changes.clear()

    order.cancel_backorder(backorder.id, None)

    assert [(type(c), c.obj) for c in order.changes] == [
        (Updated, order.line(1)),
        (Updated, backorder),
    ]


def test_deleting_a_backorder_and_removing_allocations_record_deletes() -> None:
    order = make_order(make_line(1, 10))
    allocate(order, Ids(), {BRASS: 7})
    (backorder,) = order.backorders
    (allocation,) = order.allocations
    assert backorder.id is not None
    assert allocation.id is not None
    order.changes.clear()

    order.delete_backorder(backorder.id)
    order.remove_allocations([allocation.id])

    assert len(order.changes) == 2
    first, second = order.changes
    assert isinstance(first, Deleted)
    assert first.obj is backorder
    assert isinstance(second, Deleted)
    assert second.obj is allocation


def test_adding_a_line_records_its_insert_with_the_next_line_number() -> None:
    order = make_order(make_line(1, 10), make_line(2, 3, SCREW))

    added = order.add_line(SERIAL, True, 4)

    assert (added.id, added.line_number, added.serialized) == (None, 3, True)
    assert len(order.changes) == 1
    assert isinstance(order.changes[0], Inserted)
    assert order.changes[0].obj is added


# -- the backorder rule as a property ---------------------------------------------------------


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, int]]:
    """Operations on a one-line order: allocate with stock, change quantity, remove, pack."""
    operations = st.one_of(
        st.tuples(st.just("allocate"), st.integers(0, 12)),
        st.tuples(st.just("quantity"), st.integers(1, 20)),
        st.tuples(st.just("remove"), st.just(0)),
        st.tuples(st.just("pack"), st.just(0)),
        st.tuples(st.just("delete"), st.just(0)),
    )
    return draw(st.lists(operations, max_size=10))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 20), histories())
def test_after_every_allocation_a_short_line_has_exactly_one_open_backorder_for_its_shortfall(
    initial: int, history: list[tuple[str, int]]
) -> None:
    order = make_order(make_line(1, initial))
    ids = Ids()
    for operation, value in history:
        refused: ErrorCode | None = None
        try:
            if operation == "allocate":
                allocate(order, ids, {BRASS: value})
                line = order.line(1)
                shortfall = line.quantity - order.allocated(1) - line.quantity_cancelled
                backorders = open_backorders(order, 1)
                if shortfall > 0:
                    assert [b.remaining for b in backorders] == [shortfall]
                else:
                    assert backorders == []
            elif operation == "quantity":
                order.change_line_quantity(1, value)
            elif operation == "remove":
                unpacked = [a.id for a in order.allocations if a.quantity_packed == 0 and a.id]
                if unpacked:
                    order.remove_allocations(unpacked)
            elif operation == "pack":
                order.pack()
            else:
                backorder = order.open_backorder(1)
                if backorder is not None and backorder.id is not None:
                    order.delete_backorder(backorder.id)
        except DomainError as error:
            refused = error.code
        assert refused in {None, ErrorCode.QUANTITY_BELOW_ALLOCATED, ErrorCode.NOTHING_TO_PACK}
        # Whatever happened, there is never more than one open backorder, and never a
        # negative remaining; a backorder's allocated part never exceeds its quantity.
        assert len(open_backorders(order, 1)) <= 1
        assert all(0 <= b.quantity_allocated <= b.quantity for b in order.backorders)
        assert order.allocated(1) <= order.line(1).quantity


def test_a_serialized_line_does_not_hold_back_the_order_status() -> None:
    order = make_order(make_line(1, 5), make_line(2, 3, item_id=99, serialized=True))
    order.record_allocation([plan(1, 0, (1, 5))])

    assert order.status() is OrderStatus.ALLOCATED
    order.pack()
    assert order.status() is OrderStatus.PACKED


def test_allocation_lines_and_backorders_are_named_from_their_ids() -> None:
    assert (allocation_name(17), backorder_name(3)) == ("AL-000017", "BO-000003")
    assert (allocation_name(1234567), backorder_name(0)) == ("AL-1234567", "BO-000000")


# -- priority ------------------------------------------------------------------------------


def test_an_order_has_priority_0_unless_given_one() -> None:
    assert SalesOrder(1, 1, [], [], []).priority == 0


@pytest.mark.parametrize("priority", [-1000, 0, 7, 1000])
def test_a_priority_within_the_bounds_is_set(priority: int) -> None:
    order = SalesOrder(1, 1, [], [], [])
    order.set_priority(priority)
    assert order.priority == priority
    assert order.changes == []  # the claim writes it: no row of the order changes


@pytest.mark.parametrize("priority", [-1001, 1001])
def test_a_priority_out_of_bounds_is_refused_and_the_order_keeps_its_own(priority: int) -> None:
    order = SalesOrder(1, 1, [], [], [], priority=3)
    with pytest.raises(DomainError) as refused:
        order.set_priority(priority)
    assert refused.value.code is ErrorCode.INVALID_INPUT
    assert refused.value.subject is Subject.PRIORITY
    assert refused.value.message == "Priority must be between -1000 and 1000."
    assert order.priority == 3
