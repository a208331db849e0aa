"""Domain failures: each carries a stable code that clients can branch on."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    INVALID_INPUT = "INVALID_INPUT"
    DUPLICATE = "DUPLICATE"
    SERIALIZED_ITEM = "SERIALIZED_ITEM"
    NOTHING_TO_PACK = "NOTHING_TO_PACK"
    ALLOCATION_PACKED = "ALLOCATION_PACKED"
    QUANTITY_BELOW_ALLOCATED = "QUANTITY_BELOW_ALLOCATED"
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    BACKORDER_NOT_OPEN = "BACKORDER_NOT_OPEN"
    LINE_HAS_ALLOCATIONS = "LINE_HAS_ALLOCATIONS"
    VERSION_CONFLICT = "VERSION_CONFLICT"
    UNAVAILABLE = "UNAVAILABLE"  # the database could not be reached: retry shortly


class DomainError(Exception):
    """A rule of the warehouse said no. Nothing was written."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        field: tuple[str, ...] = (),
        current_version: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.current_version = current_version

    @property
    def extensions(self) -> dict[str, str]:
        """Where a query (not a payload) reports it, graphql-core copies this into
        the GraphQL error's extensions, so the client sees the code there."""
        return {"code": self.code.value}


def not_found(what: str, field: tuple[str, ...]) -> DomainError:
    return DomainError(ErrorCode.NOT_FOUND, f"{what} not found.", field)


def require_positive(quantity: int, field: tuple[str, ...]) -> None:
    if quantity <= 0:
        raise DomainError(
            ErrorCode.INVALID_QUANTITY, "Quantity must be a positive whole number.", field
        )


def version_conflict(current: int, field: tuple[str, ...] = ("expectedVersion",)) -> DomainError:
    return DomainError(
        ErrorCode.VERSION_CONFLICT,
        f"The sales order has changed; its current version is {current}.",
        field,
        current_version=current,
    )
