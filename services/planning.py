"""Planning reads: what allocateOrder would do to an order now, worked out by the same
planner on the same stock, and nothing written (SPEC section 9)."""

from __future__ import annotations

from dataclasses import dataclass

from services.domain.errors import Subject, not_found
from services.domain.planner import AllocationStrategy, Pick, plan_allocation
from services.ports import UnitOfWorkFactory


@dataclass(frozen=True)
class LinePreview:
    """One sales-order line: the picks allocateOrder would make for it and what it would
    leave backordered. A serialized line is skipped: no picks, no shortfall."""

    line_id: int
    picks: tuple[Pick, ...]
    shortfall: int
    serialized: bool


@dataclass(frozen=True)
class AllocationPreview:
    order_id: int
    version: int  # the order's version the preview was worked out at
    lines: list[LinePreview]  # every line of the order, by line number


async def preview_allocation(
    uow_factory: UnitOfWorkFactory,
    order_id: int,
    strategy: AllocationStrategy = AllocationStrategy.FEFO,
) -> AllocationPreview:
    """allocate_order's load and plan, without recording, saving or committing: the unit
    of work ends in a rollback, so a preview writes nothing and claims nothing."""
    async with uow_factory() as uow:
        order = await uow.orders.get(order_id)
        if order is None:
            raise not_found("Sales order", Subject.ORDER)
        demand = order.demand()
        stock = await uow.stock.candidates({line.item_id for line in demand})
        plans = {plan.line_id: plan for plan in plan_allocation(demand, stock, strategy)}
    lines = []
    for line in order.lines:
        assert line.id is not None, "a loaded line is stored"
        plan = plans.get(line.id)  # none for a line with no open demand, or a serialized one
        lines.append(
            LinePreview(
                line.id, plan.picks if plan else (), plan.shortfall if plan else 0,
                line.serialized,
            )
        )  # fmt: skip
    return AllocationPreview(order.id, order.version, lines)
