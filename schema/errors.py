"""The error type every payload carries."""

import strawberry

from schema.enums import ErrorCode


@strawberry.type(description="A domain failure: nothing was changed.")
class UserError:
    code: ErrorCode
    field: list[str] | None = strawberry.field(
        default=None, description="Path to the argument or input field at fault."
    )
    message: str
    current_version: int | None = strawberry.field(
        default=None, description="With VERSION_CONFLICT: the order's version now."
    )
