"""The fixtures work: a use case writes through a real unit of work."""

from services import orders
from services.ports import UnitOfWorkFactory
from tests.service import helpers


async def test_allocating_the_walkthrough_order_takes_b1_then_b2(uow: UnitOfWorkFactory) -> None:
    await helpers.warehouse(uow)
    order_id = await helpers.order(uow, ("BRASS-SCREW", 25), ("SELF-TAP-SCREW", 25))
    result = await orders.allocate_order(uow, order_id)
    assert [a.quantity for a in result.allocations] == [15, 10, 22]
    async with uow() as u:
        order = await u.orders.get(order_id)
    assert order is not None
    assert [(b.quantity, b.status.value) for b in order.backorders] == [(3, "OPEN")]
