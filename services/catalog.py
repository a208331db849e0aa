"""Use cases for items, locations and stock adjustments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.domain.errors import DomainError, ErrorCode, Subject, not_found
from services.ports import UnitOfWorkFactory


def _require_text(value: str, subject: Subject) -> str:
    if not value.strip():
        raise DomainError(ErrorCode.INVALID_INPUT, f"The {subject} is required.", subject)
    return value.strip()


async def create_item(
    uow_factory: UnitOfWorkFactory, sku: str, name: str, serialized: bool, unit: str
) -> int:
    sku, name = _require_text(sku, Subject.ITEM), _require_text(name, Subject.NAME)
    unit = _require_text(unit, Subject.UNIT)
    async with uow_factory() as uow:
        item_id = await uow.catalog.add_item(sku, name, serialized, unit)
        await uow.commit()
        return item_id


async def create_location(
    uow_factory: UnitOfWorkFactory, code: str, name: str, pick_sequence: int
) -> int:
    code, name = _require_text(code, Subject.LOCATION), _require_text(name, Subject.NAME)
    async with uow_factory() as uow:
        location_id = await uow.catalog.add_location(code, name, pick_sequence)
        await uow.commit()
        return location_id


@dataclass(frozen=True)
class Adjustment:
    sku: str
    lot_number: str
    location_code: str
    quantity: int
    reason: str
    received_at: datetime | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class AdjustmentResult:
    balance_id: int
    adjustment_id: int


async def adjust_inventory(uow_factory: UnitOfWorkFactory, change: Adjustment) -> AdjustmentResult:
    """Add (or with a negative quantity, write off) stock of one lot at one location.

    The lot and the balance are created on first receipt. On hand may not drop
    below what is allocated; the guarded update makes that hold under races too.
    """
    if change.quantity == 0:
        raise DomainError(ErrorCode.INVALID_QUANTITY, "Quantity may not be zero.", Subject.QUANTITY)
    lot_number = _require_text(change.lot_number, Subject.LOT)
    async with uow_factory() as uow:
        item = await uow.catalog.item_by_sku(change.sku)
        if item is None:
            raise not_found(f"Item {change.sku!r}", Subject.ITEM)
        location_id = await uow.catalog.location_id(change.location_code)
        if location_id is None:
            raise not_found(f"Location {change.location_code!r}", Subject.LOCATION)
        lot_id = await uow.stock.lot_id(item.id, lot_number, change.received_at, change.expires_at)
        balance_id = await uow.stock.adjust(item.id, lot_id, location_id, change.quantity)
        if balance_id is None:
            raise DomainError(
                ErrorCode.INSUFFICIENT_STOCK,
                "On hand may not drop below the quantity allocated.",
                Subject.QUANTITY,
            )
        adjustment_id = await uow.stock.record_adjustment(
            balance_id, change.quantity, change.reason
        )
        await uow.commit()
        return AdjustmentResult(balance_id, adjustment_id)
