"""Domain failures as the UserError of payloads."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import ParamSpec, TypeVar

from resolvers.ids import pk_of
from schema.errors import UserError
from schema.payloads import Payload
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


P = TypeVar("P", bound=Payload)
Params = ParamSpec("Params")


def errors_in_payload(
    payload: type[P],
) -> Callable[[Callable[Params, Awaitable[P]]], Callable[Params, Awaitable[P]]]:
    """A mutation resolver whose every DomainError, from the use case or from reading
    the result after the commit (UNAVAILABLE), becomes `errors` of its payload."""

    def decorate(resolver: Callable[Params, Awaitable[P]]) -> Callable[Params, Awaitable[P]]:
        @functools.wraps(resolver)
        async def resolve(*args: Params.args, **kwargs: Params.kwargs) -> P:
            try:
                return await resolver(*args, **kwargs)
            except DomainError as error:
                return payload(errors=[user_error(error)])

        return resolve

    return decorate
