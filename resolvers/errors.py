"""Domain failures as the UserError of payloads: the domain says what a failure is
about (an entity, a value's role, a position); each mutation says which of its
arguments that is, as a GraphQL field path."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import ParamSpec, TypeVar

import strawberry

from db.errors import Unavailable
from resolvers.ids import pk_of
from schema.enums import ErrorCode
from schema.errors import UserError
from schema.payloads import Payload
from services.domain.errors import DomainError, Subject, not_found
from services.domain.errors import ErrorCode as DomainCode

INDEX = "<index>"  # in a path template: the position the error carries
FieldPaths = Mapping[Subject, tuple[str, ...]]
# Every order mutation takes expectedVersion under that name.
VERSION_PATH: FieldPaths = {Subject.EXPECTED_VERSION: ("expectedVersion",)}


def field_path(error: DomainError, paths: FieldPaths) -> list[str] | None:
    template = paths.get(error.subject) if error.subject is not None else None
    if template is None:
        return None
    return [
        str(error.index) if part == INDEX else part
        for part in template
        if part != INDEX or error.index is not None
    ]


def user_error(error: DomainError, paths: FieldPaths) -> UserError:
    return UserError(
        code=ErrorCode(error.code.value),
        field=field_path(error, paths),
        message=error.message,
        current_version=error.current_version,
    )


def unavailable_error(error: Unavailable) -> UserError:
    return UserError(code=ErrorCode.UNAVAILABLE, message=error.message)


def _retryable(resolver_arguments: Mapping[str, object]) -> None:
    """Mark the request's outcome as one an idempotency key does not keep."""
    info = resolver_arguments["info"]
    assert isinstance(info, strawberry.Info)
    info.context.retryable_refusal = True


def require_pk(global_id: str, type_name: str, subject: Subject) -> int:
    """The pk of an id naming a type_name; NOT_FOUND (about subject) for anything else."""
    pk = pk_of(global_id, type_name)
    if pk is None:
        raise not_found(type_name, subject)
    return pk


P = TypeVar("P", bound=Payload)
Params = ParamSpec("Params")


def errors_in_payload(
    payload: type[P], paths: FieldPaths
) -> Callable[[Callable[Params, Awaitable[P]]], Callable[Params, Awaitable[P]]]:
    """A mutation resolver whose every DomainError becomes `errors` of its payload, with
    the field path `paths` gives its subject, and so does a lost database connection
    (UNAVAILABLE), also one lost while reading the result after the commit."""

    def decorate(resolver: Callable[Params, Awaitable[P]]) -> Callable[Params, Awaitable[P]]:
        @functools.wraps(resolver)
        async def resolve(*args: Params.args, **kwargs: Params.kwargs) -> P:
            try:
                return await resolver(*args, **kwargs)
            except DomainError as error:
                if error.code is DomainCode.VERSION_CONFLICT and error.subject is None:
                    _retryable(kwargs)  # the server's own retries ran out
                return payload(errors=[user_error(error, paths)])
            except Unavailable as error:
                _retryable(kwargs)
                return payload(errors=[unavailable_error(error)])

        return resolve

    return decorate
