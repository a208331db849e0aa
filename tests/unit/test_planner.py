"""The allocation planner: which balances a line draws from, in which order, and how much."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.domain.planner import (
    AllocationStrategy,
    LineDemand,
    LinePlan,
    StockCandidate,
    plan_allocation,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
ITEM = 1
OTHER_ITEM = 2


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def candidate(
    balance_id: int,
    available: int = 10,
    *,
    item_id: int = ITEM,
    received: int = 0,
    expires: int | None = None,
    pick_sequence: int = 0,
) -> StockCandidate:
    """A balance whose lot and location ids are derived from its id, so picks can be traced."""
    return StockCandidate(
        balance_id=balance_id,
        item_id=item_id,
        lot_id=balance_id * 100,
        location_id=balance_id * 1000,
        available=available,
        received_at=day(received),
        expires_at=None if expires is None else day(expires),
        pick_sequence=pick_sequence,
    )


def line(line_id: int, open_demand: int, item_id: int = ITEM) -> LineDemand:
    return LineDemand(line_id=line_id, item_id=item_id, open_demand=open_demand)


def taken(plan: LinePlan) -> list[tuple[int, int]]:
    """(balance id, quantity) of each pick, in pick order."""
    return [(pick.balance_id, pick.quantity) for pick in plan.picks]


def only_plan(
    demand: Sequence[LineDemand],
    stock: Sequence[StockCandidate],
    strategy: AllocationStrategy = AllocationStrategy.FEFO,
) -> LinePlan:
    plans = plan_allocation(demand, stock, strategy)
    assert len(plans) == 1
    return plans[0]


# -- FEFO ---------------------------------------------------------------------------------


def test_fefo_is_the_default_strategy() -> None:
    stock = [candidate(1, 5, received=0, expires=None), candidate(2, 5, received=9, expires=3)]

    default = plan_allocation([line(1, 5)], stock)

    assert default == plan_allocation([line(1, 5)], stock, AllocationStrategy.FEFO)
    assert taken(default[0]) == [(2, 5)]


def test_fefo_takes_the_earliest_expiry_first_and_no_expiry_last() -> None:
    stock = [
        candidate(1, 4, expires=None),
        candidate(2, 4, expires=30),
        candidate(3, 4, expires=10),
        candidate(4, 4, expires=20),
    ]

    plan = only_plan([line(1, 16)], stock)

    assert taken(plan) == [(3, 4), (4, 4), (2, 4), (1, 4)]
    assert plan.shortfall == 0


def test_fefo_prefers_an_expiring_lot_received_later_to_a_non_expiring_lot_received_earlier() -> (
    None
):
    stock = [candidate(1, 5, received=0, expires=None), candidate(2, 5, received=50, expires=60)]

    assert taken(only_plan([line(1, 5)], stock)) == [(2, 5)]


def test_fefo_breaks_an_expiry_tie_by_the_earliest_receipt() -> None:
    stock = [
        candidate(1, 3, received=5, expires=10, pick_sequence=0),
        candidate(2, 3, received=2, expires=10, pick_sequence=9),
    ]

    assert taken(only_plan([line(1, 6)], stock)) == [(2, 3), (1, 3)]


def test_fefo_breaks_a_tie_among_non_expiring_lots_by_the_earliest_receipt() -> None:
    stock = [
        candidate(1, 3, received=5, expires=None, pick_sequence=0),
        candidate(2, 3, received=2, expires=None, pick_sequence=9),
    ]

    assert taken(only_plan([line(1, 6)], stock)) == [(2, 3), (1, 3)]


def test_fefo_breaks_an_expiry_and_receipt_tie_by_pick_sequence() -> None:
    stock = [
        candidate(1, 3, received=1, expires=10, pick_sequence=7),
        candidate(2, 3, received=1, expires=10, pick_sequence=3),
    ]

    assert taken(only_plan([line(1, 6)], stock)) == [(2, 3), (1, 3)]


def test_fefo_breaks_a_full_tie_by_the_lowest_balance_id() -> None:
    stock = [
        candidate(9, 3, received=1, expires=10, pick_sequence=2),
        candidate(4, 3, received=1, expires=10, pick_sequence=2),
        candidate(6, 3, received=1, expires=10, pick_sequence=2),
    ]

    assert taken(only_plan([line(1, 9)], stock)) == [(4, 3), (6, 3), (9, 3)]


def test_fefo_breaks_a_full_tie_among_non_expiring_lots_by_the_lowest_balance_id() -> None:
    stock = [candidate(8, 3), candidate(5, 3)]

    assert taken(only_plan([line(1, 6)], stock)) == [(5, 3), (8, 3)]


def test_fefo_compares_expiry_instants_not_wall_clock_readings() -> None:
    # 10:00 at UTC+5 is 05:00 UTC, an hour before 06:00 UTC: it expires first.
    plus_five = timezone(timedelta(hours=5))
    early = replace(candidate(1, 3), expires_at=datetime(2024, 6, 1, 10, tzinfo=plus_five))
    late = replace(candidate(2, 3), expires_at=datetime(2024, 6, 1, 6, tzinfo=UTC))

    assert taken(only_plan([line(1, 3)], [late, early])) == [(1, 3)]


# -- FIFO ---------------------------------------------------------------------------------


def test_fifo_takes_the_earliest_receipt_first_ignoring_expiry() -> None:
    stock = [
        candidate(1, 4, received=3, expires=5),
        candidate(2, 4, received=1, expires=None),
        candidate(3, 4, received=2, expires=100),
    ]

    plan = only_plan([line(1, 12)], stock, AllocationStrategy.FIFO)

    assert taken(plan) == [(2, 4), (3, 4), (1, 4)]


def test_fifo_breaks_a_receipt_tie_by_pick_sequence_not_expiry() -> None:
    stock = [
        candidate(1, 3, received=1, expires=2, pick_sequence=5),
        candidate(2, 3, received=1, expires=None, pick_sequence=1),
    ]

    plan = only_plan([line(1, 6)], stock, AllocationStrategy.FIFO)

    assert taken(plan) == [(2, 3), (1, 3)]


def test_fifo_breaks_a_full_tie_by_the_lowest_balance_id() -> None:
    stock = [
        candidate(7, 3, received=1, pick_sequence=1),
        candidate(3, 3, received=1, pick_sequence=1),
    ]

    plan = only_plan([line(1, 6)], stock, AllocationStrategy.FIFO)

    assert taken(plan) == [(3, 3), (7, 3)]


# -- LOCATION -----------------------------------------------------------------------------


def test_location_takes_the_lowest_pick_sequence_first_ignoring_receipt_and_expiry() -> None:
    stock = [
        candidate(1, 4, received=0, expires=1, pick_sequence=30),
        candidate(2, 4, received=9, expires=None, pick_sequence=10),
        candidate(3, 4, received=5, expires=50, pick_sequence=20),
    ]

    plan = only_plan([line(1, 12)], stock, AllocationStrategy.LOCATION)

    assert taken(plan) == [(2, 4), (3, 4), (1, 4)]


def test_location_breaks_a_full_tie_by_the_lowest_balance_id() -> None:
    stock = [
        candidate(12, 3, received=1, expires=4, pick_sequence=2),
        candidate(11, 3, received=1, expires=4, pick_sequence=2),
    ]

    plan = only_plan([line(1, 6)], stock, AllocationStrategy.LOCATION)

    assert taken(plan) == [(11, 3), (12, 3)]


@pytest.mark.parametrize("strategy", list(AllocationStrategy))
def test_every_strategy_ends_with_the_balance_id_as_tie_break(
    strategy: AllocationStrategy,
) -> None:
    stock = [candidate(i, 1, received=2, expires=8, pick_sequence=3) for i in (5, 2, 9, 1, 7)]

    plan = only_plan([line(1, 5)], stock, strategy)

    assert [balance for balance, _ in taken(plan)] == [1, 2, 5, 7, 9]


# -- every criterion of every key, in its place ----------------------------------------------

# Each strategy's sort key, most significant criterion first. SPEC section 4 gives FEFO's
# whole key, the first criterion of FIFO and LOCATION, and the balance id last in each; the
# middle of FIFO's and LOCATION's keys is the planner's own choice, held here so that it
# only changes on purpose.
KEYS: dict[AllocationStrategy, tuple[str, ...]] = {
    AllocationStrategy.FEFO: (
        "has an expiry",
        "earliest expiry",
        "earliest receipt",
        "lowest pick sequence",
        "lowest balance id",
    ),
    AllocationStrategy.FIFO: ("earliest receipt", "lowest pick sequence", "lowest balance id"),
    AllocationStrategy.LOCATION: ("lowest pick sequence", "earliest receipt", "lowest balance id"),
}


def rivals(earlier: str, later: str) -> tuple[StockCandidate, StockCandidate]:
    """Two balances of 5: the first better on the `earlier` criterion, the second better on
    the `later` one and on its lower balance id, and the two equal on every other criterion.

    Only a key that compares `earlier` before `later` (and before the balance id) takes the
    first; dropping `earlier`, or moving it behind `later`, takes the second.
    """

    def balance(balance_id: int, better_on: str) -> StockCandidate:
        # A lot without expiry is "better" on the expiry date (it sorts as the earliest
        # instant), so it only loses when "has an expiry" is compared first.
        no_expiry = earlier == "has an expiry" and better_on != "has an expiry"
        return candidate(
            balance_id,
            5,
            received=0 if better_on == "earliest receipt" else 1,
            expires=None if no_expiry else 5 if better_on == "earliest expiry" else 9,
            pick_sequence=0 if better_on == "lowest pick sequence" else 1,
        )

    return balance(2, earlier), balance(1, later)


@pytest.mark.parametrize(
    ("strategy", "earlier", "later"),
    [
        (strategy, earlier, later)
        for strategy, key in KEYS.items()
        for earlier, later in combinations(key, 2)
    ],
)
def test_a_balance_better_on_an_earlier_criterion_is_taken_before_one_better_on_a_later(
    strategy: AllocationStrategy, earlier: str, later: str
) -> None:
    better, rival = rivals(earlier, later)

    # The rival comes first, so a key that cannot tell them apart keeps it first.
    plan = only_plan([line(1, 5)], [rival, better], strategy)

    assert taken(plan) == [(better.balance_id, 5)]


# -- quantities ---------------------------------------------------------------------------


def test_a_line_takes_only_what_it_needs_and_stops() -> None:
    stock = [candidate(1, 15, received=0), candidate(2, 20, received=1)]

    plan = only_plan([line(1, 25)], stock)

    assert taken(plan) == [(1, 15), (2, 10)]
    assert plan.allocated == 25
    assert plan.shortfall == 0


def test_a_pick_carries_the_lot_and_location_of_its_balance() -> None:
    plan = only_plan([line(7, 2)], [candidate(3, 5)])

    (pick,) = plan.picks
    assert (pick.line_id, pick.balance_id, pick.lot_id, pick.location_id, pick.quantity) == (
        7,
        3,
        300,
        3000,
        2,
    )


def test_lines_of_the_same_item_share_its_balances_and_an_earlier_line_takes_stock_first() -> None:
    stock = [candidate(1, 6, received=0), candidate(2, 4, received=1)]

    first, second, third = plan_allocation([line(1, 5), line(2, 4), line(3, 3)], stock)

    assert taken(first) == [(1, 5)]
    assert taken(second) == [(1, 1), (2, 3)]
    assert taken(third) == [(2, 1)]
    assert (first.shortfall, second.shortfall, third.shortfall) == (0, 0, 2)


def test_the_order_of_the_lines_decides_who_is_short() -> None:
    stock = [candidate(1, 5)]

    a_first = plan_allocation([line(1, 5), line(2, 5)], stock)
    b_first = plan_allocation([line(2, 5), line(1, 5)], stock)

    assert [(p.line_id, p.shortfall) for p in a_first] == [(1, 0), (2, 5)]
    assert [(p.line_id, p.shortfall) for p in b_first] == [(2, 0), (1, 5)]


def test_lines_of_different_items_do_not_touch_each_others_stock() -> None:
    stock = [candidate(1, 5, item_id=ITEM), candidate(2, 5, item_id=OTHER_ITEM)]

    brass, screw = plan_allocation([line(1, 8, ITEM), line(2, 3, OTHER_ITEM)], stock)

    assert (taken(brass), brass.shortfall) == ([(1, 5)], 3)
    assert (taken(screw), screw.shortfall) == ([(2, 3)], 0)


def test_the_walk_through_allocates_brass_from_two_lots_and_backorders_self_tapping_screws() -> (
    None
):
    brass_b1 = candidate(1, 15, item_id=ITEM, received=0, pick_sequence=1)
    brass_b2 = candidate(2, 20, item_id=ITEM, received=1, pick_sequence=2)
    screw_s1 = candidate(3, 22, item_id=OTHER_ITEM, received=0, pick_sequence=3)

    brass, screw = plan_allocation(
        [line(1, 25, ITEM), line(2, 25, OTHER_ITEM)], [screw_s1, brass_b2, brass_b1]
    )

    assert (taken(brass), brass.shortfall) == ([(1, 15), (2, 10)], 0)
    assert (taken(screw), screw.shortfall) == ([(3, 22)], 3)


def test_zero_available_gives_a_full_shortfall_and_no_picks() -> None:
    plan = only_plan([line(1, 7)], [candidate(1, 0), candidate(2, 0)])

    assert plan.picks == ()
    assert plan.allocated == 0
    assert plan.shortfall == 7


def test_a_balance_without_available_stock_is_skipped_not_picked_for_zero() -> None:
    stock = [candidate(1, 0, received=0), candidate(2, 4, received=1)]

    assert taken(only_plan([line(1, 4)], stock)) == [(2, 4)]


def test_an_item_with_no_candidates_gives_a_full_shortfall() -> None:
    plans = plan_allocation([line(1, 4, item_id=99)], [candidate(1, 10, item_id=ITEM)])

    assert [(p.line_id, p.picks, p.shortfall) for p in plans] == [(1, (), 4)]


def test_no_stock_at_all_gives_every_line_a_full_shortfall() -> None:
    plans = plan_allocation([line(1, 4), line(2, 6, OTHER_ITEM)], [])

    assert [(p.line_id, p.picks, p.shortfall) for p in plans] == [(1, (), 4), (2, (), 6)]


def test_a_line_with_no_open_demand_takes_nothing_and_is_not_short() -> None:
    plan = only_plan([line(1, 0)], [candidate(1, 10)])

    assert (plan.picks, plan.shortfall) == ((), 0)


def test_no_demand_gives_an_empty_plan() -> None:
    assert plan_allocation([], [candidate(1, 10)]) == []


def test_the_plans_come_back_in_the_order_of_the_lines() -> None:
    plans = plan_allocation([line(5, 1), line(2, 1), line(9, 1)], [candidate(1, 10)])

    assert [p.line_id for p in plans] == [5, 2, 9]


# -- properties ---------------------------------------------------------------------------

ITEMS = (1, 2, 3)
LINE_ITEMS = (1, 2, 3, 4)  # item 4 never has stock


@dataclass(frozen=True)
class Scenario:
    demand: list[LineDemand]
    stock: list[StockCandidate]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """A few balances of a few items, with many ties on dates and pick sequence."""
    balance_count = draw(st.integers(0, 8))
    balance_ids = draw(
        st.lists(st.integers(1, 1000), min_size=balance_count, max_size=balance_count, unique=True)
    )
    stock = [
        StockCandidate(
            balance_id=balance_id,
            item_id=draw(st.sampled_from(ITEMS)),
            lot_id=draw(st.integers(1, 5)),
            location_id=draw(st.integers(1, 5)),
            available=draw(st.integers(0, 20)),
            received_at=day(draw(st.integers(0, 3))),
            expires_at=draw(st.none() | st.integers(0, 3).map(day)),
            pick_sequence=draw(st.integers(0, 3)),
        )
        for balance_id in balance_ids
    ]
    line_count = draw(st.integers(0, 6))
    line_ids = draw(
        st.lists(st.integers(1, 1000), min_size=line_count, max_size=line_count, unique=True)
    )
    demand = [
        LineDemand(
            line_id=line_id,
            item_id=draw(st.sampled_from(LINE_ITEMS)),
            open_demand=draw(st.integers(0, 30)),
        )
        for line_id in line_ids
    ]
    return Scenario(demand, stock)


allocation_strategies = st.sampled_from(list(AllocationStrategy))
property_settings = settings(max_examples=200, deadline=None)

_NEVER = datetime.max.replace(tzinfo=UTC)

# Each strategy's whole order (KEYS above), written out independently of the planner.
SPEC_ORDER: dict[AllocationStrategy, Callable[[StockCandidate], tuple[object, ...]]] = {
    AllocationStrategy.FEFO: lambda c: (
        c.expires_at is None,
        c.expires_at or _NEVER,
        c.received_at,
        c.pick_sequence,
        c.balance_id,
    ),
    AllocationStrategy.FIFO: lambda c: (c.received_at, c.pick_sequence, c.balance_id),
    AllocationStrategy.LOCATION: lambda c: (c.pick_sequence, c.received_at, c.balance_id),
}


def balances_of(scenario: Scenario) -> dict[int, StockCandidate]:
    return {c.balance_id: c for c in scenario.stock}


@property_settings
@given(scenarios(), allocation_strategies)
def test_no_pick_has_a_quantity_of_zero_or_less(
    scenario: Scenario, strategy: AllocationStrategy
) -> None:
    plans = plan_allocation(scenario.demand, scenario.stock, strategy)

    assert all(pick.quantity > 0 for plan in plans for pick in plan.picks)


@property_settings
@given(scenarios(), allocation_strategies)
def test_no_balance_gives_more_than_its_available_summed_over_all_lines(
    scenario: Scenario, strategy: AllocationStrategy
) -> None:
    plans = plan_allocation(scenario.demand, scenario.stock, strategy)

    taken_from: dict[int, int] = defaultdict(int)
    for plan in plans:
        for pick in plan.picks:
            taken_from[pick.balance_id] += pick.quantity
    balances = balances_of(scenario)
    assert set(taken_from) <= set(balances)
    for balance_id, quantity in taken_from.items():
        assert quantity <= balances[balance_id].available


@property_settings
@given(scenarios(), allocation_strategies)
def test_no_line_gets_more_than_its_open_demand(
    scenario: Scenario, strategy: AllocationStrategy
) -> None:
    plans = plan_allocation(scenario.demand, scenario.stock, strategy)

    for demand, plan in zip(scenario.demand, plans, strict=True):
        assert plan.allocated <= demand.open_demand


@property_settings
@given(scenarios(), allocation_strategies)
def test_allocated_plus_shortfall_is_the_open_demand_of_every_line(
    scenario: Scenario, strategy: AllocationStrategy
) -> None:
    plans = plan_allocation(scenario.demand, scenario.stock, strategy)

    assert [p.line_id for p in plans] == [d.line_id for d in scenario.demand]
    for demand, plan in zip(scenario.demand, plans, strict=True):
        assert plan.shortfall >= 0
        assert plan.allocated + plan.shortfall == demand.open_demand


@property_settings
@given(scenarios(), allocation_strategies)
def test_a_pick_draws_on_a_balance_of_the_lines_item_with_its_lot_and_location(
    scenario: Scenario, strategy: AllocationStrategy
) -> None:
    plans = plan_allocation(scenario.demand, scenario.stock, strategy)

    balances = balances_of(scenario)
    for demand, plan in zip(scenario.demand, plans, strict=True):
        for pick in plan.picks:
            balance = balances[pick.balance_id]
            assert pick.line_id == demand.line_id
            assert balance.item_id == demand.item_id
            assert (pick.lot_id, pick.location_id) == (balance.lot_id, balance.location_id)


@property_settings
@given(scenarios(), allocation_strategies, st.data())
def test_the_same_input_in_any_order_of_candidates_gives_the_same_plan(
    scenario: Scenario, strategy: AllocationStrategy, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(scenario.stock))

    assert plan_allocation(scenario.demand, shuffled, strategy) == plan_allocation(
        scenario.demand, scenario.stock, strategy
    )


@property_settings
@given(scenarios(), allocation_strategies)
def test_the_picks_of_a_line_follow_the_strategys_order(
    scenario: Scenario, strategy: AllocationStrategy
) -> None:
    plans = plan_allocation(scenario.demand, scenario.stock, strategy)

    balances = balances_of(scenario)
    order = SPEC_ORDER[strategy]
    for plan in plans:
        keys = [order(balances[pick.balance_id]) for pick in plan.picks]
        assert keys == sorted(keys)
        # A balance is used at most once per line: one pick takes all it needs from it.
        assert len({pick.balance_id for pick in plan.picks}) == len(plan.picks)


@property_settings
@given(scenarios(), allocation_strategies)
def test_a_later_balance_is_only_touched_once_every_earlier_one_is_empty(
    scenario: Scenario, strategy: AllocationStrategy
) -> None:
    plans = plan_allocation(scenario.demand, scenario.stock, strategy)

    order = SPEC_ORDER[strategy]
    remaining = {c.balance_id: c.available for c in scenario.stock}
    balances = balances_of(scenario)
    for plan in plans:
        for pick in plan.picks:
            chosen = balances[pick.balance_id]
            for other in scenario.stock:
                if other.item_id == chosen.item_id and order(other) < order(chosen):
                    assert remaining[other.balance_id] == 0
            remaining[pick.balance_id] -= pick.quantity


@property_settings
@given(scenarios(), allocation_strategies)
def test_a_line_is_only_short_when_its_items_stock_is_exhausted(
    scenario: Scenario, strategy: AllocationStrategy
) -> None:
    plans = plan_allocation(scenario.demand, scenario.stock, strategy)

    remaining = {c.balance_id: c.available for c in scenario.stock}
    for demand, plan in zip(scenario.demand, plans, strict=True):
        for pick in plan.picks:
            remaining[pick.balance_id] -= pick.quantity
        if plan.shortfall > 0:
            left = sum(
                remaining[c.balance_id] for c in scenario.stock if c.item_id == demand.item_id
            )
            assert left == 0
