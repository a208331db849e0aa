"""Domain failures as the UserError of payloads."""

from __future__ import annotations

from collections.abc import Sequence

from resolvers.ids import pk_of
from schema.errors import UserError
from services.domain.errors import DomainError, not_found


def user_error(error: DomainError) -> UserError:
    return UserError(
        code=error.code,
        field=list(error.field) or None,
        message=error.message,
        current_version=error.current_version,
    )


def require_pk(global_id: str, type_name: str, field: Sequence[str] = ("id",)) -> int:
    """The pk of an id naming a type_name; NOT_FOUND for anything else."""
    pk = pk_of(global_id, type_name)
    if pk is None:
        raise not_found(type_name, tuple(field))
    return pk
