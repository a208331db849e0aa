"""Which open backorders of an item fillBackorders fills, and in what order (SPEC 9):
the order's priority, highest first, then the order's creation, then the order's id,
then the backorder's id (an order with two backordered lines of one item)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from services.domain.errors import DomainError, ErrorCode, Subject

# How many backorders one fill touches: each is an order loaded, claimed and saved in
# one transaction, so a partner with more waiting calls again (nothing is filled twice).
DEFAULT_FILL_LIMIT = 50
MAX_FILL_LIMIT = 200


@dataclass(frozen=True)
class Waiting:
    """An OPEN backorder, as far as the fill order goes."""

    backorder_id: int
    order_id: int
    line_id: int
    priority: int
    order_created_at: datetime


def fill_key(waiting: Waiting) -> tuple[int, datetime, int, int]:
    return (-waiting.priority, waiting.order_created_at, waiting.order_id, waiting.backorder_id)


def fill_order(waiting: Iterable[Waiting], limit: int) -> list[Waiting]:
    """The first `limit` backorders in the order they are filled."""
    return sorted(waiting, key=fill_key)[:limit]


def require_fill_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_FILL_LIMIT:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"Limit must be between 1 and {MAX_FILL_LIMIT}.",
            Subject.LIMIT,
        )
