"""Domain failures: each carries a stable code that clients can branch on, and the
facts of what it is about (which entity or value, and at which position), which
the API's edge turns into a path to the argument at fault."""

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


class Subject(StrEnum):
    """What a failure is about: an entity the request named, or the role of a value it
    gave. With an index, the position among the request's lines or ids."""

    ORDER = "order"
    LINE = "line"
    ALLOCATION = "allocation"
    BACKORDER = "backorder"
    ITEM = "item"
    LOCATION = "location"
    LOT = "lot"
    QUANTITY = "quantity"
    CUSTOMER = "customer"
    ORDER_NUMBER = "order number"
    NAME = "name"
    UNIT = "unit"
    LINES = "lines"  # the order's list of lines as a whole (too many)
    EXPECTED_VERSION = "expected version"
    PRIORITY = "priority"
    LIMIT = "limit"


class DomainError(Exception):
    """A rule of the warehouse said no. Nothing was written."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        subject: Subject | None = None,
        *,
        index: int | None = None,
        current_version: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.subject = subject
        self.index = index
        self.current_version = current_version

    def at(self, index: int) -> DomainError:
        """The same failure, placed at a position of the request's list."""
        self.index = index
        return self

    @property
    def extensions(self) -> dict[str, str]:
        """Where a query (not a payload) reports it, graphql-core copies this into
        the GraphQL error's extensions, so the client sees the code there."""
        return {"code": self.code.value}


def not_found(what: str, subject: Subject, index: int | None = None) -> DomainError:
    return DomainError(ErrorCode.NOT_FOUND, f"{what} not found.", subject, index=index)


def require_positive(quantity: int) -> None:
    if quantity <= 0:
        raise DomainError(
            ErrorCode.INVALID_QUANTITY,
            "Quantity must be a positive whole number.",
            Subject.QUANTITY,
        )


def version_conflict(current: int, expected: int | None) -> DomainError:
    """The order is at `current`. The client's expectedVersion is at fault only when it
    sent one; otherwise the server's own retries ran out."""
    return DomainError(
        ErrorCode.VERSION_CONFLICT,
        f"The sales order has changed; its current version is {current}.",
        Subject.EXPECTED_VERSION if expected is not None else None,
        current_version=current,
    )
