"""The walk-through's starting point (SPEC section 2, steps 1 and 2) as demo data."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import UTC, datetime

from services import catalog, orders
from services.domain.errors import DomainError, ErrorCode
from services.ports import UnitOfWorkFactory

DEMO_ORDER = "SO-DEMO-1"
log = logging.getLogger(__name__)


async def load_demo_data(uow_factory: UnitOfWorkFactory) -> bool:
    """Items, locations, lots and one order. The order is made last and marks the
    load done, so a second start changes nothing. Returns whether it loaded."""
    async with uow_factory() as uow:
        if await uow.orders.number_taken(DEMO_ORDER):
            return False
    for sku, name in (("BRASS-SCREW", "Brass Screw"), ("SELF-TAP-SCREW", "Self-Tapping Screw")):
        await _ignoring_duplicate(catalog.create_item(uow_factory, sku, name, False, "EA"))
    for sequence, code in enumerate(("A-01", "A-02", "A-03"), start=1):
        await _ignoring_duplicate(
            catalog.create_location(uow_factory, code, f"Aisle A bin {sequence}", sequence)
        )
    for sku, lot, location, quantity, day in (
        ("BRASS-SCREW", "B1", "A-01", 15, 5),  # B1 was received first
        ("BRASS-SCREW", "B2", "A-02", 20, 10),
        ("SELF-TAP-SCREW", "S1", "A-03", 22, 5),
    ):
        await catalog.adjust_inventory(
            uow_factory,
            catalog.Adjustment(
                sku,
                lot,
                location,
                quantity,
                "demo receipt",
                received_at=datetime(2026, 1, day, tzinfo=UTC),
            ),
        )
    await orders.create_sales_order(
        uow_factory,
        "Demo Hardware Ltd",
        DEMO_ORDER,
        [orders.LineInput("BRASS-SCREW", 25), orders.LineInput("SELF-TAP-SCREW", 25)],
    )
    log.info("demo data loaded: order %s", DEMO_ORDER)
    return True


async def _ignoring_duplicate(call: Awaitable[object]) -> None:
    try:
        await call
    except DomainError as error:
        if error.code is not ErrorCode.DUPLICATE:
            raise
