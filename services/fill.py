"""fillBackorders (SPEC 9): available stock of one item to its OPEN backorders, in fill
order, in one unit of work. Each backorder's line is allocated as allocateOrder would
allocate it (the planner, FEFO), what an earlier fill took is gone for a later one, and
every order touched is claimed (saved) before any balance is locked, as allocateOrder does,
so a race with another change of those orders is found and the whole fill retried."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.domain.errors import Subject, not_found
from services.domain.fill import DEFAULT_FILL_LIMIT, Waiting, fill_order, require_fill_limit
from services.domain.order import AllocationLine, SalesOrder
from services.domain.planner import LineDemand, plan_allocation
from services.ports import UnitOfWork, UnitOfWorkFactory
from services.retry import retry_on_conflict


@dataclass(frozen=True)
class FillResult:
    backorder_ids: list[int]  # those filled, in full or in part, in fill order
    allocations: list[AllocationLine]  # the allocation lines made, ids filled in, in fill order

    @property
    def allocation_ids(self) -> list[int]:
        return [a.id for a in self.allocations if a.id is not None]


@retry_on_conflict
async def fill_backorders(
    uow_factory: UnitOfWorkFactory, sku: str, limit: int = DEFAULT_FILL_LIMIT
) -> FillResult:
    """A serialized item never has backorders, so it has nothing to fill; nothing to fill
    writes nothing and changes no version."""
    require_fill_limit(limit)
    async with uow_factory() as uow:
        item = await uow.catalog.item_by_sku(sku)
        if item is None:
            raise not_found(f"Item {sku!r}", Subject.ITEM)
        waiting = fill_order(await uow.orders.open_backorders(item.id, limit), limit)
        orders = await _orders(uow, waiting)
        demand = [_demand(orders[w.order_id], w, item.id) for w in waiting]
        plans = plan_allocation(demand, await uow.stock.candidates({item.id}))
        filled, made = [], []
        by_order: dict[int, list[AllocationLine]] = {}
        for backorder, plan in zip(waiting, plans, strict=True):
            if plan.picks:
                created = orders[backorder.order_id].record_allocation([plan])
                by_order.setdefault(backorder.order_id, []).extend(created)
                filled.append(backorder.backorder_id)
                made += created
        for order_id in by_order:  # claims first: a loser locks no balance
            await uow.orders.save(orders[order_id])
        await uow.stock.reserve(by_order)  # one change of the balances, locked in id order
        if by_order:
            await uow.commit()
        return FillResult(filled, made)


async def _orders(uow: UnitOfWork, waiting: Sequence[Waiting]) -> dict[int, SalesOrder]:
    found = await uow.orders.get_many(list(dict.fromkeys(w.order_id for w in waiting)))
    orders = {order.id: order for order in found}
    assert len(orders) == len({w.order_id for w in waiting})  # orders are never deleted
    return orders


def _demand(order: SalesOrder, waiting: Waiting, item_id: int) -> LineDemand:
    """The backordered line's open demand, as allocateOrder would reserve for it; none
    when the backorder was filled or deleted since it was listed."""
    backorder = order.open_backorder(waiting.line_id)
    if backorder is None or backorder.id != waiting.backorder_id:
        return LineDemand(waiting.line_id, item_id, 0)
    return LineDemand(waiting.line_id, item_id, order.open_demand(order.line(waiting.line_id)))
