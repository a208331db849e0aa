"""The fill order of fillBackorders: priority highest first, then the order's creation,
then the order's id, then the backorder's id; and the bounds of its limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.domain.errors import DomainError, ErrorCode, Subject
from services.domain.fill import (
    DEFAULT_FILL_LIMIT,
    MAX_FILL_LIMIT,
    Waiting,
    fill_order,
    require_fill_limit,
)

DAY = datetime(2026, 1, 1, tzinfo=UTC)


def waiting(backorder_id: int, order_id: int, priority: int, day: int) -> Waiting:
    return Waiting(backorder_id, order_id, backorder_id * 10, priority, DAY + timedelta(days=day))


def test_a_higher_priority_is_filled_first_whatever_its_age() -> None:
    old, urgent = waiting(1, 1, 0, day=1), waiting(2, 2, 5, day=9)
    assert fill_order([old, urgent], 10) == [urgent, old]


def test_a_negative_priority_comes_after_the_default() -> None:
    low, default = waiting(1, 1, -1, day=1), waiting(2, 2, 0, day=2)
    assert fill_order([low, default], 10) == [default, low]


def test_of_equal_priority_the_older_order_is_filled_first() -> None:
    newer, older = waiting(1, 1, 5, day=3), waiting(2, 2, 5, day=2)
    assert fill_order([newer, older], 10) == [older, newer]


def test_orders_made_at_the_same_time_go_by_id_then_by_backorder() -> None:
    second_order = waiting(1, 8, 5, day=1)
    first_order_later_line = waiting(3, 7, 5, day=1)
    first_order_first_line = waiting(2, 7, 5, day=1)
    assert fill_order([second_order, first_order_later_line, first_order_first_line], 10) == [
        first_order_first_line,
        first_order_later_line,
        second_order,
    ]


def test_the_limit_keeps_the_first_in_fill_order() -> None:
    a, b, c = waiting(1, 1, 9, day=1), waiting(2, 2, 5, day=1), waiting(3, 3, 0, day=1)
    assert fill_order([c, b, a], 2) == [a, b]
    assert fill_order([c, b, a], 1) == [a]


def _key(w: Waiting) -> tuple[int, datetime, int, int]:
    """The rule as SPEC 9 states it, written out independently of the module."""
    return (-w.priority, w.order_created_at, w.order_id, w.backorder_id)


waitings = st.lists(
    st.builds(
        waiting,
        backorder_id=st.integers(1, 50),
        order_id=st.integers(1, 10),
        priority=st.integers(-3, 3),
        day=st.integers(0, 3),
    ),
    max_size=20,
    unique_by=lambda w: w.backorder_id,
)


@given(waitings, st.integers(1, 25))
def test_a_fill_takes_the_first_backorders_of_the_rule_in_its_order(
    backorders: list[Waiting], limit: int
) -> None:
    filled = fill_order(backorders, limit)

    assert len(filled) == min(limit, len(backorders))
    assert set(filled) <= set(backorders)
    for earlier, later in pairwise(filled):
        assert earlier.priority > later.priority or (
            earlier.priority == later.priority and _key(earlier) < _key(later)
        )
    left_out = set(backorders) - set(filled)
    assert all(_key(f) < _key(w) for f in filled for w in left_out)


@pytest.mark.parametrize("limit", [1, DEFAULT_FILL_LIMIT, MAX_FILL_LIMIT])
def test_a_limit_from_1_to_the_maximum_is_taken(limit: int) -> None:
    require_fill_limit(limit)


@pytest.mark.parametrize("limit", [0, -1, MAX_FILL_LIMIT + 1])
def test_a_limit_outside_1_to_the_maximum_is_refused(limit: int) -> None:
    with pytest.raises(DomainError) as refused:
        require_fill_limit(limit)
    assert refused.value.code is ErrorCode.INVALID_INPUT
    assert refused.value.subject is Subject.LIMIT
    assert refused.value.message == "Limit must be between 1 and 200."


def test_the_default_and_maximum_limits_are_the_documented_ones() -> None:
    # docs/api.md and docs/limits.md state them; a change must change the docs too.
    assert (DEFAULT_FILL_LIMIT, MAX_FILL_LIMIT) == (50, 200)
