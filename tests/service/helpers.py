"""Set-ups shared by service-level tests: items, locations and stock through the use cases."""

from __future__ import annotations

from datetime import UTC, datetime

from services import catalog, orders
from services.ports import UnitOfWorkFactory


async def item(uow: UnitOfWorkFactory, sku: str, serialized: bool = False) -> int:
    return await catalog.create_item(uow, sku, sku.title(), serialized, "EA")


async def location(uow: UnitOfWorkFactory, code: str, pick_sequence: int = 0) -> int:
    return await catalog.create_location(uow, code, code, pick_sequence)


async def stock(
    uow: UnitOfWorkFactory,
    sku: str,
    lot: str,
    location_code: str,
    quantity: int,
    *,
    received_day: int = 1,
    expires_day: int | None = None,
) -> int:
    """Receive stock; days are of January 2026. Returns the balance id."""
    result = await catalog.adjust_inventory(
        uow,
        catalog.Adjustment(
            sku,
            lot,
            location_code,
            quantity,
            "test",
            received_at=datetime(2026, 1, received_day, tzinfo=UTC),
            expires_at=datetime(2026, 6, expires_day, tzinfo=UTC) if expires_day else None,
        ),
    )
    return result.balance_id


async def order(uow: UnitOfWorkFactory, *lines: tuple[str, int], number: str | None = None) -> int:
    return await orders.create_sales_order(
        uow, "Customer", number, [orders.LineInput(sku, qty) for sku, qty in lines]
    )


async def warehouse(uow: UnitOfWorkFactory) -> None:
    """The walk-through's step 1: two items, B1 (15) received before B2 (20), S1 (22)."""
    await item(uow, "BRASS-SCREW")
    await item(uow, "SELF-TAP-SCREW")
    for sequence, code in enumerate(("A-01", "A-02", "A-03"), start=1):
        await location(uow, code, sequence)
    await stock(uow, "BRASS-SCREW", "B1", "A-01", 15, received_day=5)
    await stock(uow, "BRASS-SCREW", "B2", "A-02", 20, received_day=10)
    await stock(uow, "SELF-TAP-SCREW", "S1", "A-03", 22, received_day=5)


async def one_balance(uow: UnitOfWorkFactory, on_hand: int, sku: str = "WIDGET") -> int | None:
    """An item with `on_hand` in lot L1 at BIN-1 (nothing received when 0); its balance id."""
    await item(uow, sku)
    await location(uow, "BIN-1")
    return await stock(uow, sku, "L1", "BIN-1", on_hand) if on_hand else None
